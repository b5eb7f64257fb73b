#!/bin/sh
# Certificates for OCPP security profiles 2 and 3, with openssl (OpenSSL 1.1.1 or newer):
# an operator CA, the CSMS server certificate, and one client certificate per charger whose
# subject commonName is its charge point identity. Documented in docs/readme/security.md;
# tests/security/test_openssl_recipe.py runs this script and connects a charger with the result.
#
#   scripts/issue-certificates.sh ca                        -> pki/ca.key pki/ca.crt
#   scripts/issue-certificates.sh server HOST [HOST|IP...]  -> pki/server.key pki/server.crt
#   scripts/issue-certificates.sh charger ID                -> pki/chargers/ID.key pki/chargers/ID.crt
#
# Environment: PKI_DIR (default pki), ORG (subject organizationName, default "CSMS Operator"),
# CA_DAYS (CA validity, default 3650), DAYS (server and charger validity, default 825).
# Keys are unencrypted EC P-256 PEM files readable by their owner only: keep ca.key offline.
set -eu

PKI_DIR=${PKI_DIR:-pki}
ORG=${ORG:-CSMS Operator}
CA_DAYS=${CA_DAYS:-3650}
DAYS=${DAYS:-825}

usage() {
    sed -n 's/^#   scripts/scripts/p' "$0" >&2
    exit 2
}

need_ca() {
    if [ ! -f "$PKI_DIR/ca.crt" ] || [ ! -f "$PKI_DIR/ca.key" ]; then
        echo "issue-certificates: no CA in $PKI_DIR: run '$0 ca' first" >&2
        exit 1
    fi
}

umask 077
mkdir -p "$PKI_DIR"
[ $# -ge 1 ] || usage
command=$1
shift

case $command in
ca)
    [ $# -eq 0 ] || usage
    if [ -e "$PKI_DIR/ca.key" ]; then
        echo "issue-certificates: $PKI_DIR/ca.key exists: not replacing the CA" >&2
        exit 1
    fi
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
        -days "$CA_DAYS" -subj "/O=$ORG/CN=$ORG Charger CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$PKI_DIR/ca.key" -out "$PKI_DIR/ca.crt"
    chmod 644 "$PKI_DIR/ca.crt"
    echo "$PKI_DIR/ca.crt: set ocpp.tls_ca to it; chargers trust it for the CSMS"
    ;;
server)
    [ $# -ge 1 ] || usage
    need_ca
    host=$1
    names=""
    for name in "$@"; do
        case $name in
        *[!0-9.]* | "") case $name in *:*) kind=IP ;; *) kind=DNS ;; esac ;;
        *) kind=IP ;;
        esac
        names="${names:+$names,}$kind:$name"
    done
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" "subjectAltName=$names" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" > "$PKI_DIR/server.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/O=$ORG/CN=$host" -keyout "$PKI_DIR/server.key" -out "$PKI_DIR/server.csr"
    openssl x509 -req -sha256 -days "$DAYS" -in "$PKI_DIR/server.csr" \
        -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" -CAserial "$PKI_DIR/ca.srl" \
        -CAcreateserial -extfile "$PKI_DIR/server.ext" -out "$PKI_DIR/server.crt"
    rm -f "$PKI_DIR/server.csr" "$PKI_DIR/server.ext"
    chmod 644 "$PKI_DIR/server.crt"
    echo "$PKI_DIR/server.crt ($names): set ocpp.tls_cert and ocpp.tls_key (and http.*)"
    ;;
charger)
    [ $# -eq 1 ] || usage
    need_ca
    id=$1
    case $id in
    "" | .* | */* | *\\* | *+* | *=* | *,* | *\"*)
        echo "issue-certificates: '$id' cannot be used in a subject and a file name" >&2
        exit 2
        ;;
    esac
    mkdir -p "$PKI_DIR/chargers"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=clientAuth" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" > "$PKI_DIR/chargers/$id.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/O=$ORG/CN=$id" -keyout "$PKI_DIR/chargers/$id.key" -out "$PKI_DIR/chargers/$id.csr"
    openssl x509 -req -sha256 -days "$DAYS" -in "$PKI_DIR/chargers/$id.csr" \
        -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" -CAserial "$PKI_DIR/ca.srl" \
        -CAcreateserial -extfile "$PKI_DIR/chargers/$id.ext" -out "$PKI_DIR/chargers/$id.crt"
    rm -f "$PKI_DIR/chargers/$id.csr" "$PKI_DIR/chargers/$id.ext"
    chmod 644 "$PKI_DIR/chargers/$id.crt"
    echo "$PKI_DIR/chargers/$id.crt and .key: install them in charger $id (CN=$id)"
    ;;
*)
    usage
    ;;
esac
