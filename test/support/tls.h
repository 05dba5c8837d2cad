// A throwaway PKI for TLS tests: a root CA and server certificates signed by it, made with
// the openssl command line in a temporary directory, once per test process. EC P-256 keys
// keep the whole set under a second. Nothing here is trusted by the system: a client must
// be given ca_cert (HttpSpec::ca_file) to verify them.
#pragma once

#include <cstdint>
#include <string>

namespace netmond::test {

// One server certificate, as PEM files, and when it ends.
struct TestCert {
  std::string cert;            // the leaf alone
  std::string key;             // its private key
  std::string chain;           // what a server sends: the leaf, then its intermediates (if any)
  std::int64_t not_after = 0;  // the leaf's notAfter, seconds since the epoch
  std::int64_t chain_not_after = 0;  // the earliest notAfter in `chain`
};

struct TestPki {
  std::string dir;
  std::string ca_cert;  // the self-signed root that issued everything below
  std::int64_t ca_not_after = 0;
  // Each leaf is for "localhost", 127.0.0.1 and ::1 unless said otherwise.
  TestCert valid;       // issued by the root, ends in about 2 years
  TestCert expired;     // 2020-01-01 to 2021-01-01
  TestCert expiring;    // ends 3 days after it was made
  TestCert other_name;  // for "other.example" only: a hostname mismatch on loopback
  // Issued by an intermediate CA (in `chain`) that ends in 30 days, long before this leaf
  // (1 year): the earliest expiry in the chain is not the leaf's.
  TestCert chained;
  std::string intermediate_cert;
};

// The PKI of this test process, made on first use. Throws std::runtime_error with openssl's
// stderr when a step fails.
const TestPki& test_pki();

// The notAfter of the PEM certificate at `path`, as openssl reads it, in seconds since the
// epoch. Throws when openssl cannot read it.
std::int64_t cert_not_after(const std::string& path);

// `epoch` as RFC 3339 in UTC: "2027-01-02T15:04:05Z".
std::string rfc3339(std::int64_t epoch);

}  // namespace netmond::test
