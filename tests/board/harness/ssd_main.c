/* Host harness for the generated ssd decoder: reads the .wk's output blobs, laid out as NNIE
 * leaves them, from one file (concatenated in output order) and prints the detections.
 * usage: ssd_main BLOBS [SRC_W SRC_H]   (with a source size: mapped to its pixels) */
#include <stdio.h>
#include <stdlib.h>

#include "ssd.h"
#include "harness_io.h"

int main(int argc, char **argv)
{
    nnbuild_blob blobs[SSD_NUM_OUTPUTS];
    ssd_detection dets[512];
    unsigned char *data;
    void *workspace;
    int i, n;
    if (argc != 2 && argc != 4)
        return 2;
    data = read_blobs(argv[1], ssd_output_bytes, ssd_output_stride, SSD_NUM_OUTPUTS,
                      blobs);
    workspace = malloc(SSD_WORKSPACE_BYTES);
    if (data == NULL || workspace == NULL)
        return 3;
    n = ssd_decode(blobs, workspace, dets, 512);
    if (n >= 0 && argc == 4)
        ssd_to_source(dets, n, atoi(argv[2]), atoi(argv[3]));
    printf("%d\n", n);
    for (i = 0; i < n; i++)
        printf("%.9g %.9g %.9g %.9g %.9g\n", dets[i].x1, dets[i].y1, dets[i].x2, dets[i].y2,
               dets[i].score);
    free(workspace);
    free(data);
    return 0;
}
