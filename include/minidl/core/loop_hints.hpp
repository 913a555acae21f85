// minidl/core/loop_hints.hpp - hints that let the compiler vectorise a loop it would leave scalar.
#pragma once

// Put before a loop whose output never overlaps its input, so that GCC vectorises it without a
// run-time overlap check (ivdep). Clang has no hint of that kind that does not also force the
// vectorisation and warn (-Wpass-failed) wherever it cannot, at -O1 for one, so Clang keeps its
// run-time check.
#if defined(__GNUC__) && !defined(__clang__)
#define MINIDL_LOOP_NO_OVERLAP _Pragma("GCC ivdep")
#else
#define MINIDL_LOOP_NO_OVERLAP
#endif

// Put before a loop whose iterations are independent (each reads and writes
// only its own elements; the output may be the input itself), so that it is
// vectorised at -O2 as well as at -O3. GCC 12's -O2 vectorises only loops it
// can do without a scalar remainder or a run-time overlap check, which rules
// out nearly every loop over n elements; an OpenMP simd loop is vectorised
// whatever it costs. Without OpenMP, GCC gets ivdep (the overlap check goes);
// Clang vectorises such loops at -O2 by itself. Only for contiguous loops:
// forced through a gather or a scatter, a loop can get slower.
#if defined(__GNUC__) && !defined(__clang__) && defined(_OPENMP)
#define MINIDL_VECTORIZE _Pragma("omp simd")
#elif defined(__GNUC__) && !defined(__clang__)
#define MINIDL_VECTORIZE _Pragma("GCC ivdep")
#else
#define MINIDL_VECTORIZE
#endif
