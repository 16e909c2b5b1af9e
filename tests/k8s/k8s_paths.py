"""Where the deployment files are, and overlays made of them, for the tests in this folder."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from tryon.deploy.manifests import Manifest, render

ROOT = Path(__file__).parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod", "gpu")


def render_prod_with(component: str, folder: Path) -> list[Manifest]:
    """The prod overlay with `k8s/components/<component>` added, as a store's overlay in
    `folder` would add it, rendered."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S / "overlays/prod", folder)],
                "components": [os.path.relpath(K8S / "components" / component, folder)],
            }
        )
    )
    return render(folder, "--load-restrictor", "LoadRestrictionsNone")
