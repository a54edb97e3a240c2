"""``s2p docs``: build the static site of the notebooks ``s2p reproduce`` executed (results/site)."""

from __future__ import annotations

import argparse
import sys

from s2p_utils.gallery import DEFAULT_SOURCE_DIR, build_site

__all__ = ["cmd_docs"]


def cmd_docs(args: argparse.Namespace) -> int:
    """``s2p docs [--results-dir DIR] [--site-dir DIR] [--source-dir DIR]``."""
    site = build_site(
        getattr(args, "results_dir", None),
        site_dir=getattr(args, "site_dir", None),
        source_dir=getattr(args, "source_dir", None) or DEFAULT_SOURCE_DIR,
    )
    counts = {
        status: sum(page.status == status for page in site.pages) for status in ("ok", "failed", "not run")
    }
    print(
        f"[docs] {counts['ok']} notebook page(s) ok, {counts['failed']} failed, {counts['not run']} not run "
        f"(banner pages); {len(site.warnings)} Sphinx warning(s)"
    )
    for page in site.pages:
        if page.status != "ok":
            print(f"[docs]   {page.run.output}: {page.status} ({page.reason})")
    for warning in site.warnings:
        print(f"[docs] warning: {warning}", file=sys.stderr)
    if site.status != 0:
        print(f"[docs] Sphinx failed (exit status {site.status}); source in {site.source}", file=sys.stderr)
        return 1
    print(f"[docs] open {site.index}")
    return 0
