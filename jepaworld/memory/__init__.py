"""Persistent memory: what an agent has seen, embedded by one world model, kept on disk.

`store.MemoryStore` is the experience store (an SQLite file); a graph over it and long-horizon
planning build on top. Memory sees a model only through `planning.protocols.WorldModelLike`, and
identifies it by the sha256 of its `model.safetensors`, so embeddings of two checkpoints never mix.
"""
