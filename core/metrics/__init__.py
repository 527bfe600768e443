"""Evaluation metrics shared by every evaluator (and public for third-party evaluators).

All functions are vectorised numpy and reproduce the numbers of InsightFace's evaluation
scripts on the same embeddings:

- :mod:`facebone.metrics.verification`: 10-fold pair verification (LFW-style ``.bin`` sets).
- :mod:`facebone.metrics.roc`: ROC, TPR at FPR (nearest ROC point, as InsightFace), AUC, EER.
- :mod:`facebone.metrics.templates`: IJB template pooling and chunked pair scoring.
- :mod:`facebone.metrics.identification`: CMC rank-k and open-set TPIR at FPIR.
- :mod:`facebone.metrics.plots`: ROC and CMC plots (PNG).
"""
