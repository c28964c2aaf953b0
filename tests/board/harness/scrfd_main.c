/* Host harness for the generated SCRFD decoder: reads the .wk's output blobs, laid out as
 * NNIE leaves them, from one file (concatenated in output order) and prints the faces.
 * usage: scrfd_main BLOBS [SRC_W SRC_H]   (with a source size: mapped to its pixels) */
#include <stdio.h>
#include <stdlib.h>

#include "scrfd.h"
#include "harness_io.h"

int main(int argc, char **argv)
{
    nnbuild_blob blobs[SCRFD_NUM_OUTPUTS];
    scrfd_face faces[256];
    unsigned char *data;
    void *workspace;
    int i, k, n;
    if (argc != 2 && argc != 4)
        return 2;
    data = read_blobs(argv[1], scrfd_output_bytes, scrfd_output_stride,
                      SCRFD_NUM_OUTPUTS, blobs);
    workspace = malloc(SCRFD_WORKSPACE_BYTES);
    if (data == NULL || workspace == NULL)
        return 3;
    n = scrfd_decode(blobs, workspace, faces, 256);
    if (n >= 0 && argc == 4)
        scrfd_to_source(faces, n, atoi(argv[2]), atoi(argv[3]));
    printf("%d\n", n);
    for (i = 0; i < n; i++) {
        printf("%.9g %.9g %.9g %.9g %.9g", faces[i].x1, faces[i].y1, faces[i].x2, faces[i].y2,
               faces[i].score);
        for (k = 0; k < 10; k++)
            printf(" %.9g", faces[i].landmarks[k]);
        printf("\n");
    }
    free(workspace);
    free(data);
    return 0;
}
