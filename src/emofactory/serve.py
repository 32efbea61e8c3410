"""`python -m emofactory.serve [NAME]`: one service process — the stage's gRPC API and, beside it, its
JetStream worker — for any stage of the pipeline, with the features built on it (served_class)."""

from __future__ import annotations

import os
import sys

from emofactory.core.adapters import event_handler, register_rpc
from emofactory.core.config import check_settings
from emofactory.core.service import main
from emofactory.core.stage import Stage, StageContext
from emofactory.pipeline import NAMES, SETTINGS, STAGES, stage_class
from emofactory.provision import load_topology, provision


def served_class(name: str) -> type[Stage]:
    """The stage a service runs, or a feature built on it that runs in its place (a subclass of it, its
    work unchanged): the review's RPCs and page beside the catalog's API. Imported here, in the one
    process that serves it: its packages are in the catalog's image alone (deploy/docker/services.py)."""
    if name == "catalog":
        from emofactory.review.service import ReviewedCatalog

        return ReviewedCatalog
    return stage_class(name)


def attach_stage(name: str):
    def attach(server, rt):
        stage = served_class(name)(StageContext(rt.store, rt.work_dir))
        names = register_rpc(server, stage) if stage.rpc else []
        return names + stage.register_services(server, rt), event_handler(stage, rt), stage.consumes, stage.start

    return attach


async def apply_topology(js, path: str) -> None:
    await provision(js, load_topology(path))


if __name__ == "__main__":
    # NAME, or the service a service's image was built for (EMO_SERVICE, deploy/docker/Dockerfile)
    args = sys.argv[1:] or [os.environ.get("EMO_SERVICE", "")]
    if len(args) != 1 or args[0] not in NAMES:
        sys.exit(f"usage: python -m emofactory.serve {{{','.join(NAMES)}}}")
    name = args[0]
    check_settings(SETTINGS)  # an unknown section or setting stops the service here, named
    # OpenMP threads (torch, CTranslate2) that wait for work spin on their core by default: beside the
    # other services on the same cores, vision's spinning took the CPU they needed (bench.pipeline on
    # 2 cores: vision 85 CPU-s spinning, 36 passive). Set here, before any model loads OpenMP.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main(name, attach_stage(name), STAGES, apply_topology)
