#!/usr/bin/env python3
"""Forge a clbsd host archive (docs/host.md "The archive") the way an attacker
would: any members, any manifest, with every member's XXH3-128 and the
manifest's own checksum computed again, so that only the importer's checks of
what the manifest says stand in the way (the checksum is no signature).

usage: host_forge.py XXH128 OUT SPEC.json
SPEC: {"members": {NAME: TEXT, ...}, "manifest": {config, containers, ...}}
The members are written in the order given, then manifest.json.
"""
import io
import json
import subprocess
import sys
import tarfile

TAG = '{"manifest_xxh3":"'


def xxh(helper, data):
    return subprocess.run([helper], input=data, capture_output=True,
                          check=True).stdout.decode().strip()


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def main():
    helper, out, spec_path = sys.argv[1:4]
    with open(spec_path) as f:
        spec = json.load(f)
    man = {"format": "clbsd-host", "version": 1, "label": "forged",
           "consistency": "per-container", "config": [], "containers": [],
           "images": [], "networks": [], "members": []}
    man.update(spec.get("manifest", {}))
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, text in spec.get("members", {}).items():
            data = text.encode()
            add(tar, name, data)
            man["members"].append({"name": name, "size": len(data),
                                   "xxh3": xxh(helper, data)})
        body = json.dumps(man, separators=(",", ":"), sort_keys=True)
        text = TAG + "0" * 32 + '",' + body[1:] + "\n"
        text = text.replace("0" * 32, xxh(helper, text.encode()), 1)
        add(tar, "manifest.json", text.encode())


if __name__ == "__main__":
    main()
