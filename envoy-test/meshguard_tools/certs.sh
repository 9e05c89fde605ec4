#!/usr/bin/env bash
# Test PKI for the Envoy end-to-end tests and `make run`.
#
#   envoy-test/meshguard_tools/certs.sh OUTDIR [NAME=URI ...]   (or: python -m meshguard_tools.certs)
#
# Creates in OUTDIR (idempotent: existing files are kept):
#   ca.crt/ca.key                       a test CA
#   server.crt/server.key               SAN DNS:localhost, IP:127.0.0.1
#   <name>.crt/<name>.key               one client cert per identity (URI SAN = SPIFFE id)
#   no-uri.crt/no-uri.key               a client cert with only a CN and a DNS SAN (no URI SAN)
# Without NAME=URI arguments the fixed list below is used. Never commit the output.
set -euo pipefail

OUT=${1:?usage: certs.sh OUTDIR [NAME=URI ...]}
shift
mkdir -p "$OUT"
cd "$OUT"

if [ "$#" -eq 0 ]; then
  set -- \
    productpage=spiffe://cluster.local/ns/default/sa/productpage \
    reviews=spiffe://cluster.local/ns/default/sa/reviews \
    foo-bar=spiffe://cluster.local/ns/foo/sa/bar \
    ingress=spiffe://cluster.local/ns/istio-system/sa/ingress \
    other-td=spiffe://other-td/ns/foo/sa/bar \
    bookinfo-productpage=spiffe://cluster.local/ns/default/sa/bookinfo-productpage \
    bookinfo-reviews=spiffe://cluster.local/ns/default/sa/bookinfo-reviews \
    productcatalogservice=spiffe://cluster.local/ns/default/sa/productcatalogservice
fi

DAYS=3650
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -s ca.crt ] || [ ! -s ca.key ]; then
  newkey ca.key
  openssl req -x509 -new -key ca.key -sha256 -days "$DAYS" -subj "/O=meshguard-test/CN=meshguard test CA" \
    -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt 2>/dev/null
  rm -f ./*.srl
  # a new CA invalidates every leaf signed by the old one
  find . -maxdepth 1 -name '*.crt' ! -name ca.crt -delete
fi

# leaf NAME SUBJECT EXTENSIONS
leaf() {
  local name=$1 subj=$2 ext=$3
  [ -s "$name.crt" ] && [ -s "$name.key" ] && return 0
  newkey "$name.key"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$DAYS" -sha256 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
  echo "certs.sh: $OUT/$name.crt  ($subj)"
}

leaf server "/O=meshguard-test/CN=localhost" "basicConstraints=CA:false
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"

for spec in "$@"; do
  name=${spec%%=*}
  uri=${spec#*=}
  leaf "$name" "/O=meshguard-test/CN=$name" "basicConstraints=CA:false
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectAltName=URI:$uri"
done

leaf no-uri "/O=meshguard-test/CN=no-uri-client" "basicConstraints=CA:false
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectAltName=DNS:no-uri-client.example.test"

rm -f ./*.srl
