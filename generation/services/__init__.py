"""Generation services, one module per sub-domain:

- registry: generator models (import, register, configure);
- directions: semantic directions of a model (computed, or taught by a brand);
- jobs: render jobs (submit in bulk, claim, run, succeed or fail, recover).
"""
