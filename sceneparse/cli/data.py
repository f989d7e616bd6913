"""``sceneparse data``: list, download or prepare the benchmark datasets."""

from __future__ import annotations

import argparse


def main(argv=None) -> int:
    from sceneparse.data import download as dl

    ap = argparse.ArgumentParser(prog="sceneparse data", description="Get the benchmark datasets.")
    sub = ap.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="known datasets, their official addresses, and which are installed").add_argument(
        "--root", help="data root (default: $SCENEPARSE_DATA or ../shared/data)"
    )
    for action, text in (("prepare", "check and install an official archive or folder"),
                         ("download", "download from the official address, verify and install")):  # fmt: skip
        p = sub.add_parser(action, help=text)
        p.add_argument("name", help=", ".join(sorted(dl.SOURCES)))
        p.add_argument("--root", help="data root (default: $SCENEPARSE_DATA or ../shared/data)")
        p.add_argument("--sha256", help="expected SHA-256 of the archive")
        p.add_argument("--force", action="store_true", help="replace an installed copy")
        p.add_argument("--no-progress", dest="progress", action="store_false")
        if action == "prepare":
            p.add_argument("--source", required=True, help="the official archive, or the folder it extracts to")
        else:
            p.add_argument("--url", help="another address of the same archive (a mirror)")
    args = ap.parse_args(argv)
    if args.action == "list":
        for name, url, installed, path in dl.status(args.root):
            print(f"{name:20s} {'installed' if installed else 'missing  '}  {path}\n{'':20s} {url}")
        return 0
    if args.action == "prepare":
        path = dl.prepare(args.name, args.source, args.root, progress=args.progress, force=args.force,
                          sha256=args.sha256)  # fmt: skip
    else:
        path = dl.fetch(args.name, args.root, url=args.url, sha256=args.sha256, progress=args.progress,
                        force=args.force)  # fmt: skip
    print(f"{args.name} installed: {path}")
    return 0
