"""The web UI's pure pieces (rendering, uploads, the live index); app.py lays them out in Gradio."""
