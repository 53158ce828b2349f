"""The web UI's look: fonts, CSS, and the few lines of JavaScript the page runs.

Arabic and English share every element: each one that shows text has `dir="auto"` (ui/render.py)
and the CSS below adds `unicode-bidi: plaintext` and start alignment, so each paragraph reads in
its own direction.

What this module does NOT do: lay out components (ui/chat_tab.py, ui/index_tab.py) or render
answers (ui/render.py).
"""

# Latin letters from the first fonts, Arabic ones from the first font that has them.
FONTS = (
    '"Noto Sans", "Segoe UI", "Noto Naskh Arabic", "Noto Sans Arabic", "Geeza Pro", Tahoma, '
    '"DejaVu Sans", Arial, sans-serif'
)
CSS = f"""
.isnad-answer, .isnad-question, .isnad-article, .isnad-status, .isnad-empty,
#isnad-question textarea, #isnad-sources label {{ font-family: {FONTS}; line-height: 1.75; }}
.isnad-answer *, .isnad-question, .isnad-article *, .isnad-status * {{ text-align: start; }}
.isnad-answer-text {{ margin: 0 0 .4em; font-size: 1.05em; }}
.isnad-ref {{ color: var(--color-accent); font-weight: 600; white-space: nowrap; }}
.isnad-sources {{ list-style: none; padding: .3em 0 0; margin: 0;
  border-top: 1px solid var(--border-color-primary); }}
.isnad-source {{ margin: .35em 0; }}
.isnad-title {{ font-weight: 600; }}
.isnad-meta {{ color: var(--body-text-color-subdued); font-size: .85em; }}
.isnad-quote {{ margin: .2em 0; padding: .2em .7em; background: var(--background-fill-secondary);
  border-inline-start: 3px solid var(--color-accent); }}
.isnad-abstain {{ border: 2px dashed #d97706; border-radius: 8px; padding: .5em .8em;
  background: rgba(217, 119, 6, .07); }}
.isnad-abstain-label {{ font-weight: 700; color: #b45309; margin-bottom: .3em; }}
.isnad-sources-head {{ font-size: .9em; color: var(--body-text-color-subdued); }}
.isnad-article-body {{ white-space: pre-wrap; unicode-bidi: plaintext; max-height: 62vh;
  overflow-y: auto; padding: .6em .8em; border: 1px solid var(--border-color-primary);
  border-radius: 8px; }}
.isnad-mark {{ background: #fde047; color: #111; padding: 0 .1em; border-radius: 2px; }}
.isnad-short-mark {{ background: #f59e0b; color: #111; font-weight: 700; padding: 0 .1em;
  border-radius: 2px; }}
.isnad-short {{ font-size: 1.15em; }}
.isnad-note {{ color: #b45309; font-size: .9em; }}
.isnad-status th {{ padding-inline-end: 1em; font-weight: 600; }}
.isnad-copies ul {{ margin: .1em 0 .2em; padding-inline-start: 1.2em; font-size: .9em; }}
#isnad-question textarea, #isnad-sources label span {{ unicode-bidi: plaintext;
  text-align: start; }}
.isnad-timeline {{ list-style: none; margin: .4em 0 0; padding-inline-start: 1.1em;
  border-inline-start: 2px solid var(--color-accent); }}
.isnad-event {{ position: relative; margin: 0 0 .9em; }}
.isnad-event::before {{ content: ""; position: absolute; inset-inline-start: -1.5em; top: .45em;
  width: .7em; height: .7em; border-radius: 50%; background: var(--color-accent); }}
.isnad-date {{ font-weight: 700; font-variant-numeric: tabular-nums; unicode-bidi: isolate; }}
.isnad-event-text {{ margin: .1em 0 .2em; }}
.isnad-chips {{ display: flex; flex-wrap: wrap; gap: .3em; }}
.isnad-chip {{ font-size: .82em; padding: .05em .55em; border-radius: 1em;
  background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary); }}
"""
# Runs in the browser after a source is opened: bring the highlighted span into view.
SCROLL_TO_MARK = """() => {
  let tries = 0;
  const go = () => {
    const m = document.querySelector('#isnad-mark');
    if (m) m.scrollIntoView({block: 'center', behavior: 'instant'});
    else if (tries++ < 20) setTimeout(go, 50);
  };
  setTimeout(go, 30);
}"""
ON_LOAD = """() => {
  const q = document.querySelector('#isnad-question textarea');
  if (q) q.dir = 'auto';
}"""
