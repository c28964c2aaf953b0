"""Real NNIE ``.wk`` files: read them (``reader``), and verify nnbuild against them (``verify``).

The layout is the one established on the four real files in ../shared/wk
(docs/wk-format.md); every field read here cites its section of that page.
"""
