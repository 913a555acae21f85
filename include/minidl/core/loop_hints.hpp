// minidl/core/loop_hints.hpp - hints that let the compiler vectorise a loop it would leave scalar.
#pragma once

// Put before a loop whose iterations are independent (none reads what
// another writes; an output may be its input, element for element), so that it is
// vectorised at -O2 as well as at -O3. GCC 12's -O2 vectorises only loops it
// can do without a scalar remainder or a run-time overlap check, which rules
// out nearly every loop over n elements; an OpenMP simd loop is vectorised
// whatever it costs. Without OpenMP, GCC gets ivdep (the overlap check goes);
// Clang vectorises such loops at -O2 by itself, and has no hint that does not
// also warn (-Wpass-failed) wherever it cannot vectorise, so it gets none.
// The loop is vectorised even where -O3 would judge it not worth it: check a
// new use at both levels (benchmarks/compare_opt_levels.sh).
#define MINIDL_PRAGMA(text) _Pragma(#text)
#if defined(__GNUC__) && !defined(__clang__) && defined(_OPENMP)
#define MINIDL_VECTORIZE _Pragma("omp simd")
#elif defined(__GNUC__) && !defined(__clang__)
#define MINIDL_VECTORIZE _Pragma("GCC ivdep")
#else
#define MINIDL_VECTORIZE
#endif

// MINIDL_VECTORIZE for a loop whose iterations fold into the variable var with op (|, +): the
// OpenMP form has to name that reduction; the other forms are MINIDL_VECTORIZE's.
#if defined(__GNUC__) && !defined(__clang__) && defined(_OPENMP)
#define MINIDL_VECTORIZE_REDUCTION(op, var) MINIDL_PRAGMA(omp simd reduction(op : var))
#else
#define MINIDL_VECTORIZE_REDUCTION(op, var) MINIDL_VECTORIZE
#endif

// Put before a small loop of fixed length over a register tile, so that GCC unrolls it n times:
// its -O2 leaves such loops rolled, and the accumulators they index then live in memory. Clang
// unrolls them at -O2 by itself; it would also obey the pragma at -O1, which more than trebled
// the compile time of the sanitizer build, so it gets none.
#if defined(__GNUC__) && !defined(__clang__)
#define MINIDL_UNROLL(n) MINIDL_PRAGMA(GCC unroll n)
#else
#define MINIDL_UNROLL(n)
#endif
