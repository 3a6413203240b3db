/*
 * The entry points libFuzzer calls (declared here so that every target is
 * checked against them, -Wmissing-prototypes).
 */
#ifndef CLBSD_FUZZ_H
#define CLBSD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
