// The fuzz targets' assertion: a property that does not hold is a crash libFuzzer reports,
// with the input that broke it, in every build mode (assert() depends on NDEBUG).
#pragma once

namespace netmond::fuzzing {

inline void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace netmond::fuzzing
