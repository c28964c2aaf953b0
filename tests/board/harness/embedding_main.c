/* Host harness for the generated embedding code: reads the .wk's output blobs, laid out as
 * NNIE leaves them, from one file and prints the normalised embedding, then its cosine with
 * itself.  usage: embedding_main BLOBS */
#include <stdio.h>
#include <stdlib.h>

#include "embedding.h"
#include "harness_io.h"

int main(int argc, char **argv)
{
    nnbuild_blob blobs[EMBEDDING_NUM_OUTPUTS];
    float v[EMBEDDING_DIM];
    unsigned char *data;
    int i, rc;
    if (argc != 2)
        return 2;
    data = read_blobs(argv[1], embedding_output_bytes, embedding_output_stride,
                      EMBEDDING_NUM_OUTPUTS, blobs);
    if (data == NULL)
        return 3;
    rc = embedding_normalize(blobs, v);
    if (rc < 0) {
        printf("%d\n", rc);
        free(data);
        return 0;
    }
    printf("2\n");
    for (i = 0; i < EMBEDDING_DIM; i++)
        printf("%.9g%c", v[i], i + 1 < EMBEDDING_DIM ? ' ' : '\n');
    printf("%.9g\n", embedding_cosine(v, v));
    free(data);
    return 0;
}
