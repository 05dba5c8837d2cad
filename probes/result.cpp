#include "result.h"

namespace netmond {

std::string_view code(Status status) {
  switch (status) {
    case Status::Ok: return "ok";
    case Status::Timeout: return "timeout";
    case Status::Refused: return "refused";
    case Status::Unreachable: return "unreachable";
    case Status::ResolveFailed: return "resolve_failed";
    case Status::TlsError: return "tls_error";
    case Status::BadResponse: return "bad_response";
    case Status::Unexpected: return "unexpected";
    case Status::KissOfDeath: return "kiss_of_death";
    case Status::LocalError: return "local_error";
  }
  return "local_error";
}

}  // namespace netmond
