// <immintrin.h> for the AVX-512 kernel files (matmul_avx512, _avx512_bf16, _amx, _kquant_avx512),
// with GCC 12.2's false warning switched off. Its _mm512_undefined_*() initialize a variable with
// itself on purpose, which trips -Wuninitialized wherever AVX-512 intrinsics are inlined (GCC
// PR105593, fixed in 12.3). The warning is issued after inlining, so the pragma must cover the
// rest of the including file: it is deliberately not pushed and popped. Include this header in
// those .cpp files in place of <immintrin.h>, and in no header.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
