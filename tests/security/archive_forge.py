#!/usr/bin/env python3
"""Make hostile archives for the archive tests (tests/security/archive*.sh).

Export archives (clbsd export, src/daemon/transfer.c): a 4096-byte JSON
header, then the storage driver's stream. `edit` changes the header and
seals it again (the header's and the stream's XXH3-128, computed by the
xxh128 helper), as an attacker can; `rawedit` changes it without sealing.
`addtar` appends members to a dir driver stream (a tar ending with
clbsd-send.end) and seals the result.

Image archives (clbsd load, src/image/oci.c): `oci` writes an OCI layout
tar whose layers are given as member lists; `docker` a docker save tar.

Usage:
  archive_forge.py edit XXH SRC DST PYTHON   (h is the header dict)
  archive_forge.py rawedit SRC DST PYTHON
  archive_forge.py addtar XXH SRC DST SPEC.json [PYTHON]
  archive_forge.py oci DST SPEC.json [index-symlink TARGET]
  archive_forge.py docker DST SPEC.json [manifest-symlink TARGET]
A SPEC is a list of layers, each a list of members:
  {"name": N, "type": "file"|"dir"|"symlink"|"hardlink", "data": S, "link": L}
("size": N instead of "data": N zero bytes).
"""
import hashlib
import io
import json
import subprocess
import sys
import tarfile

HEADER = 4096
TAG = b'{"header_xxh3":"'


def xxh(tool, data):
    return subprocess.run([tool], input=data, capture_output=True, check=True).stdout.strip()


def read(path):
    b = open(path, "rb").read()
    return json.loads(b[:HEADER]), b[HEADER:]


def seal(tool, h, stream):
    """A version 2 header for h over stream, checksums and all."""
    h = dict(h)
    h.pop("header_xxh3", None)
    if "stream_xxh3" in h:
        h["stream_xxh3"] = xxh(tool, stream).decode()
    h["stream_bytes"] = len(stream)
    body = json.dumps(h, separators=(",", ":")).encode()
    block = TAG + b"0" * 32 + b'",' + body[1:]
    block = block + b" " * (HEADER - 1 - len(block)) + b"\n"
    assert len(block) == HEADER
    s = xxh(tool, block)
    return block[: len(TAG)] + s + block[len(TAG) + 32:] + stream


def raw(h, stream):
    body = json.dumps(h).encode()
    return body + b" " * (HEADER - 1 - len(body)) + b"\n" + stream


def member(t, m):
    i = tarfile.TarInfo(m["name"])
    kind = m.get("type", "file")
    data = m.get("data", "").encode() if "size" not in m else b"\0" * m["size"]
    if kind == "dir":
        i.type, i.mode = tarfile.DIRTYPE, 0o755
        t.addfile(i)
    elif kind == "symlink":
        i.type, i.linkname = tarfile.SYMTYPE, m["link"]
        t.addfile(i)
    elif kind == "hardlink":
        i.type, i.linkname = tarfile.LNKTYPE, m["link"]
        t.addfile(i)
    else:
        i.size, i.mode = len(data), 0o644
        t.addfile(i, io.BytesIO(data))


def tar_of(members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for m in members:
            member(t, m)
    return b.getvalue()


def addtar(stream, members):
    """The dir driver stream with members added before its end mark."""
    src = tarfile.open(fileobj=io.BytesIO(stream), mode="r:")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for i in src.getmembers():
            if i.name == "clbsd-send.end":
                for m in members:
                    member(t, m)
            t.addfile(i, src.extractfile(i) if i.isfile() else None)
    return out.getvalue()


def blob(t, data):
    d = hashlib.sha256(data).hexdigest()
    i = tarfile.TarInfo("blobs/sha256/" + d)
    i.size = len(data)
    t.addfile(i, io.BytesIO(data))
    return "sha256:" + d, len(data)


CONFIG = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
          "rootfs": {"type": "layers", "diff_ids": []}}


def oci(dst, spec, extra):
    with tarfile.open(dst, "w") as t:
        layers = []
        for members in spec:
            d, n = blob(t, tar_of(members))
            layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                           "digest": d, "size": n})
        cd, cn = blob(t, json.dumps(CONFIG).encode())
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": cd, "size": cn}, "layers": layers}
        md, mn = blob(t, json.dumps(man).encode())
        lay = b'{"imageLayoutVersion":"1.0.0"}'
        i = tarfile.TarInfo("oci-layout")
        i.size = len(lay)
        t.addfile(i, io.BytesIO(lay))
        if extra and extra[0] == "index-symlink":
            i = tarfile.TarInfo("index.json")
            i.type, i.linkname = tarfile.SYMTYPE, extra[1]
            t.addfile(i)
            return
        idx = {"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
             "size": mn, "annotations": {"org.opencontainers.image.ref.name": "evil:1"}}]}
        data = json.dumps(idx).encode()
        i = tarfile.TarInfo("index.json")
        i.size = len(data)
        t.addfile(i, io.BytesIO(data))


def docker(dst, spec, extra):
    with tarfile.open(dst, "w") as t:
        names = []
        for n, members in enumerate(spec):
            data = tar_of(members)
            i = tarfile.TarInfo("layer%d.tar" % n)
            i.size = len(data)
            t.addfile(i, io.BytesIO(data))
            names.append(i.name)
        data = json.dumps(CONFIG).encode()
        i = tarfile.TarInfo("config.json")
        i.size = len(data)
        t.addfile(i, io.BytesIO(data))
        i = tarfile.TarInfo("manifest.json")
        if extra and extra[0] == "manifest-symlink":
            i.type, i.linkname = tarfile.SYMTYPE, extra[1]
            t.addfile(i)
            return
        data = json.dumps([{"Config": "config.json", "RepoTags": ["evil:1"],
                            "Layers": names}]).encode()
        i.size = len(data)
        t.addfile(i, io.BytesIO(data))


def main(a):
    if a[0] == "edit":
        h, s = read(a[2])
        exec(a[4], {"h": h})
        open(a[3], "wb").write(seal(a[1], h, s))
    elif a[0] == "rawedit":
        h, s = read(a[1])
        exec(a[3], {"h": h})
        open(a[2], "wb").write(raw(h, s))
    elif a[0] == "addtar":
        h, s = read(a[2])
        if len(a) > 5:
            exec(a[5], {"h": h})
        open(a[3], "wb").write(seal(a[1], h, addtar(s, json.load(open(a[4])))))
    elif a[0] == "oci":
        oci(a[1], json.load(open(a[2])), a[3:])
    elif a[0] == "docker":
        docker(a[1], json.load(open(a[2])), a[3:])
    else:
        sys.exit("unknown command " + a[0])


if __name__ == "__main__":
    main(sys.argv[1:])
