"""Ray's token authentication for the Ray instances this project starts on one machine (one owner of the constants).

Ray 2.60 turns tokens on for a ``ray start --head`` whenever ``~/.ray/auth_token`` exists (any local ``ray.init()``
on the machine writes one, and sets ``RAY_AUTH_MODE=token`` in its own process), while drivers
(``ray.init(address=...)``) and joining nodes stay off and are refused (seen here). So the local serving
clusters (``serving.runtime``) and the private Ray of a training or scoring job (``modeling.distributed``) take
the environment's ``RAY_AUTH_MODE`` when it is set (``token``: every process that joins or connects needs it and
the token), else ``disabled``.
"""

AUTH_MODE, LOCAL_AUTH_MODE = "RAY_AUTH_MODE", "disabled"
