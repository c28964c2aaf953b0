"""Board-side code: C99 post-processing generated per package (``generate``: registry and
entry point; one module per task, C templates in ``templates``), the NNIE output blob layout
(``layout``) and camera-frame inputs (``frames``)."""
