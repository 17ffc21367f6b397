"""The zoo's demo Space: compare landmark models side by side on your photos (Gradio app).

    python app.py                      # http://127.0.0.1:7860
    from space.app import build_demo   # the gr.Blocks, for embedding or tests

Modules: `models` (which weights exist here, a bounded lazy model cache), `compare` (run several models on
one input: timings, NME against ground truth, disagreement), `render` (drawings, cards, example images),
`app` (the Gradio UI and its API endpoints).
"""
