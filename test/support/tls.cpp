#include "support/tls.h"

#include "support/process.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace netmond::test {

namespace {

constexpr const char* kOpenssl = "/usr/bin/openssl";
constexpr std::int64_t kDay = 24 * 60 * 60;

// `openssl ca` rather than `x509 -req`: OpenSSL 3.0's x509 cannot set a start date, and the
// expired certificate needs one in the past. The extensions are spelled out here so that the
// system's openssl.cnf plays no part.
const char* const kConfig = R"([ ca ]
default_ca = test_ca

[ test_ca ]
database = DB/index.txt
new_certs_dir = DB
serial = DB/serial
default_md = sha256
policy = any_name
unique_subject = no
email_in_dn = no

[ any_name ]
commonName = supplied

[ req ]
distinguished_name = dn
prompt = no

[ dn ]
CN = unused

[ root_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ intermediate_ext ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ loopback_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1

[ other_name_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:other.example
)";

// Runs the openssl commands `batch` side by side (they touch disjoint files); their stderr,
// in order. Throws with the first failure's stderr.
std::vector<std::string> openssl_all(const std::vector<std::vector<std::string>>& batch) {
  std::vector<std::unique_ptr<ChildProcess>> children;
  for (auto args : batch) {
    args.insert(args.begin(), kOpenssl);
    children.push_back(std::make_unique<ChildProcess>(std::move(args)));
  }
  std::vector<std::string> said;
  for (std::size_t i = 0; i < children.size(); ++i) {
    auto code = children[i]->wait(std::chrono::seconds(30));
    if (code != 0) {
      std::string command = kOpenssl;
      for (const auto& a : batch[i]) command += " " + a;
      throw std::runtime_error("test PKI: `" + command + "` exited " +
                               (code ? std::to_string(*code) : "late") + ": " + children[i]->err());
    }
    said.push_back(children[i]->err());
  }
  return said;
}

// "Jan  1 00:00:00 2021 GMT", as openssl prints a certificate's dates, at the start of `text`.
std::int64_t parse_openssl_time(const std::string& text) {
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char month[4] = {};
  std::tm tm{};
  if (std::sscanf(text.c_str(), "%3s %d %d:%d:%d %d GMT", month, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &tm.tm_year) != 6)
    throw std::runtime_error("test PKI: not an openssl date: " + text);
  auto m = std::find_if(std::begin(kMonths), std::end(kMonths),
                        [&](const char* name) { return std::strcmp(name, month) == 0; });
  if (m == std::end(kMonths)) throw std::runtime_error("test PKI: bad month in " + text);
  tm.tm_mon = static_cast<int>(m - std::begin(kMonths));
  tm.tm_year -= 1900;
  return static_cast<std::int64_t>(timegm(&tm));
}

// The date format of `openssl ca -startdate/-enddate` (GeneralizedTime).
std::string asn1_time(std::int64_t epoch) {
  std::time_t t = static_cast<std::time_t>(epoch);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%SZ", &tm);
  return buf;
}

std::string read_file(const std::string& path) {
  std::string text;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
    std::fclose(f);
  }
  return text;
}

// One certificate to make: a new P-256 key and a certificate for it with the extensions
// of config section `ext`, valid [start, end].
struct Planned {
  Planned(std::string name, std::string cn, std::string ext, std::int64_t start, std::int64_t end)
      : name(std::move(name)), cn(std::move(cn)), ext(std::move(ext)), start(start), end(end) {}
  std::string name, cn, ext;
  std::int64_t start = 0, end = 0;
  std::string cert, key;       // paths
  std::int64_t not_after = 0;  // as `openssl ca` reported it
};

class Issuer {
 public:
  explicit Issuer(std::string dir) : dir_(std::move(dir)) {}

  // Each certificate gets a config, database and serial of its own (the rest is shared), so
  // that the `openssl ca` runs of a batch can go side by side.
  std::string config_for(const Planned& p, int serial) {
    std::string db = dir_ + "/db-" + p.name;
    std::filesystem::create_directories(db);
    write_file(db, "index.txt", "");
    write_file(db, "serial", std::to_string(serial) + "\n");
    std::string config = kConfig;
    // Search on after each replacement: the path itself may contain "DB" (the temporary
    // directory's random name does, once in a few hundred), and searching from the start
    // again then never ended: the intermittent 120 s hang of the nginx-backed tests.
    for (std::size_t at = 0; (at = config.find("DB", at)) != std::string::npos; at += db.size())
      config.replace(at, 2, db);
    return write_file(dir_, p.name + ".cnf", config);
  }

  // Makes every key and request side by side, then signs batch by batch: a batch's
  // issuers must be in earlier batches (or be the certificate itself: self-signed).
  void make(const std::vector<std::vector<std::pair<Planned*, const Planned*>>>& batches) {
    std::vector<std::vector<std::string>> requests;
    int serial = 0x1000;
    for (const auto& batch : batches) {
      for (auto [p, issuer] : batch) {
        p->cert = dir_ + "/" + p->name + ".pem";
        p->key = dir_ + "/" + p->name + ".key";
        configs_[p] = config_for(*p, serial++);
        requests.push_back({"req", "-config", configs_[p], "-new", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", p->key, "-subj",
                            "/CN=" + p->cn, "-out", dir_ + "/" + p->name + ".csr"});
      }
    }
    openssl_all(requests);
    for (const auto& batch : batches) {
      std::vector<std::vector<std::string>> signs;
      for (auto [p, issuer] : batch) {
        std::vector<std::string> ca = {"ca",
                                       "-config",
                                       configs_[p],
                                       "-batch",
                                       "-notext",
                                       "-in",
                                       dir_ + "/" + p->name + ".csr",
                                       "-out",
                                       p->cert};
        ca.insert(ca.end(), {"-extensions", p->ext, "-startdate", asn1_time(p->start), "-enddate",
                             asn1_time(p->end)});
        if (issuer == nullptr) {
          ca.insert(ca.end(), {"-selfsign", "-keyfile", p->key});
        } else {
          ca.insert(ca.end(), {"-cert", issuer->cert, "-keyfile", issuer->key});
        }
        signs.push_back(std::move(ca));
      }
      std::vector<std::string> said = openssl_all(signs);
      // The end date as openssl says it wrote it, not assumed from `end`: it is what the
      // tests compare with. (And cheaper than `openssl x509 -enddate` afterwards.)
      static constexpr std::string_view kUntil = "Certificate is to be certified until ";
      for (std::size_t i = 0; i < batch.size(); ++i) {
        auto at = said[i].find(kUntil);
        if (at == std::string::npos)
          throw std::runtime_error("test PKI: no end date in: " + said[i]);
        batch[i].first->not_after = parse_openssl_time(said[i].substr(at + kUntil.size()));
      }
    }
  }

 private:
  std::string dir_;
  std::map<const Planned*, std::string> configs_;
};

// `p` as a server certificate, sent alone or followed by `intermediate`.
TestCert server_cert(const Planned& p, const Planned* intermediate = nullptr) {
  TestCert c;
  c.cert = p.cert;
  c.key = p.key;
  c.not_after = p.not_after;
  c.chain_not_after = c.not_after;
  if (intermediate == nullptr) {
    c.chain = c.cert;
  } else {
    c.chain = write_file(std::filesystem::path(c.cert).parent_path(), p.name + "-chain.pem",
                         read_file(c.cert) + read_file(intermediate->cert));
    c.chain_not_after = std::min(c.not_after, intermediate->not_after);
  }
  return c;
}

TestPki make_pki() {
  TestPki pki;
  pki.dir = temp_dir();
  // Whole seconds: what a certificate can hold.
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  const std::int64_t since = now - kDay;  // no surprise from a clock a little behind

  Planned root{"root", "netmond test root", "root_ext", since, now + 3650 * kDay};
  Planned intermediate{"intermediate", "netmond test intermediate", "intermediate_ext", since,
                       now + 30 * kDay};
  Planned valid{"valid", "localhost", "loopback_ext", since, now + 730 * kDay};
  Planned expired{"expired", "localhost", "loopback_ext", 1577836800 /* 2020-01-01 */,
                  1609459200 /* 2021-01-01 */};
  Planned expiring{"expiring", "localhost", "loopback_ext", since, now + 3 * kDay};
  Planned other_name{"other-name", "other.example", "other_name_ext", since, now + 730 * kDay};
  Planned chained{"chained", "localhost", "loopback_ext", since, now + 365 * kDay};
  Issuer(pki.dir).make({
      {{&root, nullptr}},
      {{&intermediate, &root},
       {&valid, &root},
       {&expired, &root},
       {&expiring, &root},
       {&other_name, &root}},
      {{&chained, &intermediate}},
  });

  pki.ca_cert = root.cert;
  pki.ca_not_after = root.not_after;
  pki.valid = server_cert(valid);
  pki.expired = server_cert(expired);
  pki.expiring = server_cert(expiring);
  pki.other_name = server_cert(other_name);
  pki.chained = server_cert(chained, &intermediate);
  pki.intermediate_cert = intermediate.cert;
  return pki;
}

}  // namespace

const TestPki& test_pki() {
  static const TestPki pki = make_pki();
  return pki;
}

std::int64_t cert_not_after(const std::string& path) {
  RunResult r = run({kOpenssl, "x509", "-in", path, "-noout", "-enddate"});
  static constexpr std::string_view kPrefix = "notAfter=";
  if (r.code != 0 || !r.out.starts_with(kPrefix))
    throw std::runtime_error("cannot read the notAfter of " + path + ": " + r.out + r.err);
  return parse_openssl_time(r.out.substr(kPrefix.size()));
}

std::string rfc3339(std::int64_t epoch) {
  std::time_t t = static_cast<std::time_t>(epoch);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace netmond::test
