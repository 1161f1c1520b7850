"""What runs in the learner process: the policy learner (torch), forgetting prevention, and the
process boundary with its own request and result types.

``messages`` and ``process`` are torch-free, so the service can import them; the rest imports
torch and runs only in the learner (or, with ``adaptation.isolation=thread``, on the worker
thread).
"""
