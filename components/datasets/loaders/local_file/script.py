"""Load a user's own paired file (``scmib run --data``) into the common format."""

import json

from scmib.component import ComponentRun, run_component
from scmib.data.user import load_common
from scmib.data.user_options import DataOptions


def main(run: ComponentRun) -> None:
    keys = {name: value for name, value in run.par.items() if name not in ("data_mirror", "cache_dir")}
    keys["id"] = keys.pop("dataset_id")
    if keys.get("lineage"):
        keys["lineage"] = json.loads(keys["lineage"])
    options = DataOptions(path=str(run.path("input")), mod2_path=_optional(run, "input_mod2"), **keys)
    rna, mod2 = load_common(options)
    run.write("output_rna", rna)
    run.write("output_mod2", mod2)


def _optional(run: ComponentRun, name: str) -> str | None:
    return str(run.path(name)) if run.values.get(name) else None


if __name__ == "__main__":
    run_component(__file__, main)
