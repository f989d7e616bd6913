"""``sceneparse data``: list, download or prepare the benchmark datasets."""

from __future__ import annotations

import argparse

DESCRIPTION = """Get the benchmark datasets into the data root, in the layouts the loaders read.
The data root is $SCENEPARSE_DATA where set, else ../shared/data beside the source checkout
(now: {root}); --root overrides it for one command."""

EPILOG = """examples:
  sceneparse data list
  sceneparse data download camvid
  sceneparse data prepare siftflow --source ~/Downloads/SiftFlowDataset.zip
run 'sceneparse data ACTION --help' for the options of each action."""


def build_parser() -> argparse.ArgumentParser:
    from sceneparse.data import data_root
    from sceneparse.data import download as dl

    names = ", ".join(sorted(dl.SOURCES))
    root_help = f"the data root: the folder that holds every dataset (default: {data_root()})"
    ap = argparse.ArgumentParser(
        prog="sceneparse data",
        description=DESCRIPTION.format(root=data_root()),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser(
        "list",
        help="each dataset's official address and whether it is installed, partial or missing",
        description="Each known dataset: installed (what its loader reads is there), partial (its folder "
        "holds something else, e.g. NYU's per-frame copy without the labelled set: what is there and what "
        "is missing) or missing; and its official address.",
    )
    listing.add_argument("--root", help=root_help)
    actions = {
        "prepare": ("check an archive or folder you have and install it",
                    "Read an official archive (or the folder it extracts to) through, check its layout, build "
                    "the dataset in a temporary folder, read it back with its loader and only then move it "
                    "into place: a failure leaves nothing half-written."),
        "download": ("download from the official address, verify and install",
                     "Download the dataset's files (resuming a partial download; SHA-256 checked where one "
                     "is known) into ROOT/.downloads, then install them as 'prepare' does."),
    }  # fmt: skip
    for action, (text, description) in actions.items():
        p = sub.add_parser(action, help=text, description=description)
        p.add_argument("name", help=f"the dataset: {names}")
        if action == "prepare":
            p.add_argument("--source", required=True, metavar="PATH",
                           help="the official archive, or the folder it extracts to (required)")  # fmt: skip
        else:
            p.add_argument("--url", help="another address of the same archive, a mirror (default: the official one)")
        p.add_argument("--root", help=root_help)
        p.add_argument("--sha256", metavar="HEX", help="expected SHA-256 of the archive (default: the recorded one)")
        p.add_argument("--force", action="store_true", help="replace an installed copy (default: refuse)")
        p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return ap


def _print_inventory(root) -> None:
    from sceneparse.data import download as dl

    for d in dl.inventory(root):
        print(f"{d.name:20s} {d.state:9s}  {d.path}")
        if d.state == "partial":
            print(f"{'':20s} there: {', '.join(d.present)}; missing: {', '.join(d.missing)}")
        print(f"{'':20s} {d.url}")


def main(argv=None) -> int:
    from sceneparse.data import download as dl

    args = build_parser().parse_args(argv)
    if args.action == "list":
        _print_inventory(args.root)
        return 0
    if args.action == "prepare":
        path = dl.prepare(args.name, args.source, args.root, progress=args.progress, force=args.force,
                          sha256=args.sha256)  # fmt: skip
    else:
        path = dl.fetch(args.name, args.root, url=args.url, sha256=args.sha256, progress=args.progress,
                        force=args.force)  # fmt: skip
    print(f"{args.name} installed: {path}")
    return 0
