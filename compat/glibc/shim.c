/*
 * Definitions that glibc >= 2.38 and GCC >= 13's libstdc++ provide and that the
 * manylinux_2_39 wheels of ml-metadata and tensorflow-data-validation 1.21 ask for.
 * Built at install time and attached to those wheels only on glibc < 2.39
 * (see patch_wheels.py and BUILD_NOTES.md). Delete when the oldest supported
 * distribution ships glibc >= 2.39 and GCC >= 13.
 */
#include <stdlib.h>

/* C23 variants (glibc 2.38): identical to C99 except that they also accept a
 * "0b" prefix for base 2, which the callers (number parsing in protobuf/absl)
 * never rely on. */
long __isoc23_strtol(const char *s, char **end, int base) { return strtol(s, end, base); }
unsigned long __isoc23_strtoul(const char *s, char **end, int base) { return strtoul(s, end, base); }
long long __isoc23_strtoll(const char *s, char **end, int base) { return strtoll(s, end, base); }
unsigned long long __isoc23_strtoull(const char *s, char **end, int base) { return strtoull(s, end, base); }

/* std::ios_base_library_init() (GLIBCXX_3.4.32): GCC 13 calls it to construct the
 * standard streams early; older libstdc++ constructs them in its own init. */
void _ZSt21ios_base_library_initv(void) {}

/* __cxa_call_terminate (CXXABI_1.3.15): reached only when an exception escapes a
 * noexcept function, where the program must terminate anyway. */
void __cxa_call_terminate(void *exception) { (void)exception; abort(); }
