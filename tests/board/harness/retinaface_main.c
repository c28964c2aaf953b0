/* Host harness for the generated RetinaFace decoder: reads the .wk's output blobs, laid out as
 * NNIE leaves them, from one file (concatenated in output order) and prints the faces.
 * usage: retinaface_main BLOBS [SRC_W SRC_H]   (with a source size: mapped to its pixels) */
#include <stdio.h>
#include <stdlib.h>

#include "retinaface.h"
#include "harness_io.h"

int main(int argc, char **argv)
{
    nnbuild_blob blobs[RETINAFACE_NUM_OUTPUTS];
    retinaface_face faces[256];
    unsigned char *data;
    void *workspace;
    int i, k, n;
    if (argc != 2 && argc != 4)
        return 2;
    data = read_blobs(argv[1], retinaface_output_bytes, retinaface_output_stride,
                      RETINAFACE_NUM_OUTPUTS, blobs);
    workspace = malloc(RETINAFACE_WORKSPACE_BYTES);
    if (data == NULL || workspace == NULL)
        return 3;
    n = retinaface_decode(blobs, workspace, faces, 256);
    if (n >= 0 && argc == 4)
        retinaface_to_source(faces, n, atoi(argv[2]), atoi(argv[3]));
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
