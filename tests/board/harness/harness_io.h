/* Test-harness helper: one file holding every output blob in NNIE layout, in output order. */
#ifndef HARNESS_IO_H
#define HARNESS_IO_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Read `path` (the blobs concatenated), point blobs[i] into it; NULL on a size mismatch.
 * With the environment variable HARNESS_STRIDE_SHORT set, the first blob's stride is 4 bytes
 * short of its row (to test the decoder's check). */
static unsigned char *read_blobs(const char *path, const uint32_t *bytes, const uint32_t *stride,
                                 int count, nnbuild_blob *blobs)
{
    FILE *f = fopen(path, "rb");
    size_t total = 0, off = 0;
    unsigned char *data;
    int i;
    for (i = 0; i < count; i++)
        total += bytes[i];
    data = (unsigned char *)malloc(total ? total : 1);
    if (f == NULL || data == NULL || fread(data, 1, total, f) != total || fgetc(f) != EOF) {
        if (f)
            fclose(f);
        free(data);
        return NULL;
    }
    fclose(f);
    for (i = 0; i < count; i++) {
        blobs[i].data = data + off;
        blobs[i].stride = stride[i];
        off += bytes[i];
    }
    if (getenv("HARNESS_STRIDE_SHORT"))
        blobs[0].stride -= 4;
    return data;
}
#endif
