#!/usr/bin/env python3
"""Server-side applies the namespaced objects of a multi-document YAML stream (stdin) to one
API server, over a few kept-alive connections: the client of `hack/scale-bench.sh
--substrate`, cheap enough that the control planes, not the client, set the time it measures
(a kubectl process per batch spends CPU the members' components then lack on two cores).

    substrate-apply.py --server https://127.0.0.1:PORT --ca CA --cert CERT --key KEY \
        [--clients 16] [--field-manager NAME] < objects.yaml

Exits 1 if any apply is refused; prints the CPU seconds it used to stderr.
"""
import argparse
import concurrent.futures
import http.client
import json
import resource
import ssl
import sys
import threading
import urllib.parse

import yaml

PLURALS = {"Deployment": "deployments"}


def path_of(obj, manager):
    api, kind, meta = obj["apiVersion"], obj["kind"], obj["metadata"]
    base = f"/apis/{api}" if "/" in api else f"/api/{api}"
    query = urllib.parse.urlencode({"fieldManager": manager, "force": "true"})
    return f"{base}/namespaces/{meta['namespace']}/{PLURALS[kind]}/{meta['name']}?{query}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--field-manager", default="scale-bench-substrate")
    a = p.parse_args()
    url = urllib.parse.urlparse(a.server)
    tls = ssl.create_default_context(cafile=a.ca)
    tls.load_cert_chain(a.cert, a.key)
    objects = [o for o in yaml.safe_load_all(sys.stdin) if o]
    local = threading.local()

    def apply(obj):
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPSConnection(url.hostname, url.port, context=tls, timeout=120)
        body = json.dumps(obj)
        local.conn.request("PATCH", path_of(obj, a.field_manager), body=body,
                           headers={"Content-Type": "application/apply-patch+yaml"})
        r = local.conn.getresponse()
        text = r.read()
        if r.status >= 300:
            return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}: {r.status} {text[:200]!r}"
        return None

    with concurrent.futures.ThreadPoolExecutor(a.clients) as pool:
        refused = [e for e in pool.map(apply, objects) if e]
    for e in refused:
        print(e, file=sys.stderr)
    use = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{len(objects)} applied, {len(refused)} refused, {use.ru_utime + use.ru_stime:.1f} CPU-s",
          file=sys.stderr)
    sys.exit(1 if refused else 0)


if __name__ == "__main__":
    main()
