"""``zoo prefetch`` and ``zoo publish``.

Wired into the parser by :func:`zoo.cli.main.build_parser`.
"""

from __future__ import annotations

import argparse
import sys

from zoo.hub.publish import publish
from zoo.hub.resolve import prefetch

__all__ = ["add_commands", "add_hub_commands"]


def _cmd_prefetch(args: argparse.Namespace) -> int:
    names = args.names or None
    failed = 0
    # one name at a time so that one bad checkpoint does not stop the others
    for group in ([[n] for n in names] if names else [None]):
        try:
            got = prefetch(group, cache_dir=args.cache_dir, force=args.force)
        except (OSError, ValueError, KeyError, RuntimeError) as e:  # not found, checksum, manifest, HTTP
            print(f"zoo prefetch: error: {e}", file=sys.stderr)
            failed += 1
            continue
        for name, files in got.items():
            print(f"{name}: {len(files)} file(s) verified in {next(iter(files.values())).parent}")
        if not got:
            print("nothing to prefetch: no published checkpoint in the manifest")
    return 2 if failed else 0


def _cmd_publish(args: argparse.Namespace) -> int:
    try:
        rec = publish(args.name, args.repo_id, folder=args.folder, private=args.private)
    except (OSError, ValueError, KeyError, RuntimeError) as e:  # missing files, manifest, HTTP/auth errors
        print(f"zoo publish: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.name}: published to {rec.hub.repo_id}@{rec.hub.revision}; manifest updated")
    return 0


def add_hub_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``prefetch`` and ``publish`` to ``subparsers`` (each sets ``func`` returning an exit code)."""
    p = subparsers.add_parser(
        "prefetch", help="download + verify checkpoints into the Hugging Face cache",
        description="Download every file of the named checkpoints (default: all published ones) at their "
                    "pinned revision into the Hugging Face cache and verify their sha256, so that later "
                    "loads work with HF_HUB_OFFLINE=1.")
    p.add_argument("names", nargs="*", metavar="NAME", help="registry names (default: all published)")
    p.add_argument("--force", action="store_true", help="re-download even if cached (repairs a corrupt file)")
    p.add_argument("--cache-dir", default=None, metavar="D", help="Hub cache folder (default: $HF_HOME/hub)")
    p.set_defaults(func=_cmd_prefetch)

    q = subparsers.add_parser(
        "publish", help="upload checkpoints/NAME to the Hub and pin the commit in the manifest",
        description="Upload model.safetensors, config.json, README.md (+ adapter *.safetensors) of a "
                    "checkpoint folder to a Hub repo and record the commit sha as the manifest's revision. "
                    "Authenticates with HF_TOKEN / `hf auth login`.")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--repo-id", required=True, metavar="ORG/REPO")
    q.add_argument("--private", action="store_true", help="create the repo private")
    q.add_argument("--folder", default=None, metavar="F", help="checkpoint folder (default: checkpoints/NAME)")
    q.set_defaults(func=_cmd_publish)


add_commands = add_hub_commands
