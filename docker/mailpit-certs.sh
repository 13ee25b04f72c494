#!/bin/sh
# Throwaway CA + server certificate for the compose stack's mail catcher.
#
# Why: fanout sends plain SMTP only to loopback and never skips certificate
# checks, so it reaches `mailpit` over STARTTLS and trusts this CA through
# tls_ca_file.
#   mailpit-certs.sh TLS_DIR CA_DIR [HOST]
# writes TLS_DIR/mailpit.pem + mailpit.key (for mailpit) and CA_DIR/ca.pem
# (for fanout: two dirs, so fanout's containers never see the server key).
# Keeps existing files while they verify and have 30 days left.
set -eu

usage="usage: mailpit-certs.sh TLS_DIR CA_DIR [HOST]"
tls=${1:?$usage}
ca=${2:?$usage}
host=${3:-mailpit}
mkdir -p "$tls" "$ca"

if [ -s "$ca/ca.pem" ] && [ -s "$tls/mailpit.pem" ] && [ -s "$tls/mailpit.key" ] &&
    openssl verify -CAfile "$ca/ca.pem" -verify_hostname "$host" "$tls/mailpit.pem" >/dev/null 2>&1 &&
    openssl x509 -in "$tls/mailpit.pem" -noout -checkend 2592000 >/dev/null; then
    echo "mailpit-certs: keeping the certificates for $host"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
umask 077

cat >"$tmp/ca.ext" <<EOF
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
# webpki (rustls) rejects a CA certificate used as a server's own, so the
# server gets a leaf with the name fanout dials, signed by the CA.
cat >"$tmp/leaf.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$host
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

key "$tmp/ca.key"
openssl req -new -key "$tmp/ca.key" -subj "/CN=fanout compose dev CA" -out "$tmp/ca.csr"
openssl x509 -req -in "$tmp/ca.csr" -signkey "$tmp/ca.key" -days 365 \
    -extfile "$tmp/ca.ext" -out "$tmp/ca.pem"

key "$tmp/mailpit.key"
openssl req -new -key "$tmp/mailpit.key" -subj "/CN=$host" -out "$tmp/mailpit.csr"
openssl x509 -req -in "$tmp/mailpit.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 \
    -extfile "$tmp/leaf.ext" -out "$tmp/mailpit.pem"

openssl verify -CAfile "$tmp/ca.pem" -verify_hostname "$host" "$tmp/mailpit.pem" >/dev/null

# The CA key is dropped: nothing else is ever signed with it.
# Certificates are public; the key stays 0600 (mailpit runs as root).
chmod 0644 "$tmp/ca.pem" "$tmp/mailpit.pem"
mv "$tmp/mailpit.key" "$tls/mailpit.key"
mv "$tmp/mailpit.pem" "$tls/mailpit.pem"
mv "$tmp/ca.pem" "$ca/ca.pem"
echo "mailpit-certs: wrote $tls/mailpit.pem, $tls/mailpit.key and $ca/ca.pem for $host"
