"""Training: the process group and ranks (``dist``, ``launch``); what a run is built from
(``components``); the core-owned classifier, sharded over ranks with Partial FC sampling
(``classifier``, with ``collectives`` for the all-gather and the distributed softmax and
``cosine`` for the memory-lean cosine); the objective and its frozen teacher (``objective``,
``teacher``); a stage's starting point (``stages``: ``init`` for init_from / classifier_from,
``freeze`` for frozen parameters and batch-norm statistics); optimisers, schedules and clipping
(``optim``); numerics (``precision``); the training state and resume (``state``, ``resume``);
progress and TensorBoard (``report``); and the loop, which only loops (``loop``)."""
