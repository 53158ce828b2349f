"""What a page of the archive's table costs on a large index: `Listing.page` (index/listing.py),
as the Archive tab, `GET /api/v1/articles` and `isnad articles list` call it.

    python bench/archive.py --index /tmp/isnad-1m [--repeat 7]

Loads the index as `isnad serve` does (seconds), makes its Listing once (the newest-first order,
chunk and copy counts, source and category codes: what the server keeps per loaded index), then
times pages of `--limit` rows (median and max of `--repeat` calls): the first page, a page deep
in the table, filtered by a source, by a date range, and searched by words (the first search
also makes the titles' postings, reported apart). Every article's text is guarded while it
runs: a listing that read one would be counted ("texts_read", expected 0).
With `--remove ID` (it CHANGES the index: give a copy), the article is then removed through the
live index the server uses (ui/live.LiveIndex.remove: index.update by id, then the index
reloaded and swapped in), and the seconds until the next page and search are timed too.
Prints a table and writes bench/results/archive.json.

Target (issue 22): a page of 100 rows in <= 200 ms on the 1M-chunk bench index.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn, repeat: int) -> tuple[float, float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 1), round(max(times) * 1000, 1), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--query", default="الانتخابات البلدية", help="the words searched")
    ap.add_argument("--remove", default=None, help="also remove this article (changes --index)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "archive.json")
    args = ap.parse_args()

    from index.encoder import configure_threads
    from index.listing import Listing
    from index.store import StoredArticle, load_index

    configure_threads()
    t0 = time.perf_counter()
    index = load_index(args.index)
    load_s = time.perf_counter() - t0
    reads = [0]
    text = StoredArticle.text

    def counted(self):
        reads[0] += 1
        return text.fget(self)

    StoredArticle.text = property(counted)  # every text read while listing is counted
    t0 = time.perf_counter()
    listing = Listing(index)
    listing_s = time.perf_counter() - t0
    catalog = index.catalog
    source = max(catalog.names("source"), key=catalog.source.count, default="")
    first, last = catalog.date_range() or (date(2000, 1, 1), date(2000, 1, 1))
    mid = date.fromordinal((first.toordinal() + last.toordinal()) // 2)
    t0 = time.perf_counter()
    listing.titles()
    titles_s = time.perf_counter() - t0
    n = len(listing)
    cases = {
        "first page": dict(),
        "deep page (offset n/2)": dict(offset=n // 2),
        f"source «{source}»": dict(sources=[source]),
        f"since {mid}": dict(since=mid),
        f"search «{args.query}»": dict(query=args.query),
        "search + source + since": dict(query=args.query, sources=[source], since=mid),
    }
    rows = {}
    for name, kwargs in cases.items():
        median, worst, page = timed(
            lambda kw=kwargs: listing.page(limit=args.limit, **kw), args.repeat
        )
        rows[name] = {"median_ms": median, "max_ms": worst, "total": page.total,
                      "rows": len(page.rows)}  # fmt: skip
    result = {
        "index": str(args.index),
        "articles": n,
        "chunks": len(index),
        "sentences": len(index.sent_start),
        "limit": args.limit,
        "load_index_s": round(load_s, 2),
        "make_listing_s": round(listing_s, 2),
        "title_postings_s": round(titles_s, 2),
        "pages": rows,
        "texts_read": reads[0],
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    StoredArticle.text = text  # what follows (the live index, an update) reads texts
    if args.remove:
        result["remove"] = remove(args, index)
        print("remove", result["remove"])
    print(f"{n:,} articles, {len(index):,} chunks; load {load_s:.1f} s, listing made in "
          f"{listing_s:.2f} s, title postings {titles_s:.2f} s, texts read {reads[0]}")  # fmt: skip
    print(f"{'page of ' + str(args.limit):<40} {'median ms':>10} {'max ms':>8} {'total':>9}")
    for name, r in rows.items():
        print(f"{name:<40} {r['median_ms']:>10} {r['max_ms']:>8} {r['total']:>9,}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def remove(args, index) -> dict:
    """Seconds to remove `args.remove` through the live index, then to the next page and
    search (the listing of the reloaded index, its titles: only the new state's segments)."""
    from index.encoder import load_light_encoder
    from ui.live import LiveIndex

    del index  # the live index loads its own
    live = LiveIndex(args.index, [], load_light_encoder(None))
    live.listing().titles()  # as a server that has been up a while
    t0 = time.perf_counter()
    report = live.remove([args.remove])
    removed = time.perf_counter() - t0
    t0 = time.perf_counter()
    page = live.listing().page(limit=args.limit)
    first_page = time.perf_counter() - t0
    t0 = time.perf_counter()
    live.listing().page(query=args.query, limit=args.limit)
    first_search = time.perf_counter() - t0
    assert args.remove not in live.snapshot()[0].article_row and page.total == report.articles
    return {
        "removed": report.removed,
        "remove_s": round(removed, 2),
        "then_first_page_s": round(first_page, 2),
        "then_first_search_s": round(first_search, 2),
    }


if __name__ == "__main__":
    main()
