"""OpenRL integration: train.py, the training hook, environments (push_lite, MQE)."""
