"""The pure per-event core: decode, features, labels, detection, regimes, policy tasks, stream
and partition state, the effects a batch asks for, and the message formats.

No I/O and no torch here (a test enforces it): every class takes the small typed config it
needs, and whatever must reach Kafka, Redis or the learner leaves as an effect.
"""
