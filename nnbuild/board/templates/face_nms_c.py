"""Template of the detectors' shared face NMS (``@KEY@`` placeholders, see render).

RetinaFace and SCRFD keep the same candidate rows (x1 y1 x2 y2 score + 10 landmark values),
py_cpu_nms's "+1" overlap and greedy NMS, and map faces back to the source picture the same
way (after ``geometry.c.in``'s ``source_geometry``); ``@TASK@``/``@TASK_UPPER@`` name the task's
``<task>_face`` type, ``<task>_decode`` and its constants.
"""

TEXT = r'''/* Overlap as py_cpu_nms computes it: areas and intersections with "+1" widths. */
static double overlap(const double *a, const double *b)
{
    double w = fmax(0.0, fmin(a[2], b[2]) - fmax(a[0], b[0]) + 1.0);
    double h = fmax(0.0, fmin(a[3], b[3]) - fmax(a[1], b[1]) + 1.0);
    double inter = w * h;
    double area_a = (a[2] - a[0] + 1.0) * (a[3] - a[1] + 1.0);
    double area_b = (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    return inter / (area_a + area_b - inter);
}

static void emit(const double *c, @TASK@_face *f)
{
    int k;
    f->x1 = (float)c[0];
    f->y1 = (float)c[1];
    f->x2 = (float)c[2];
    f->y2 = (float)c[3];
    f->score = (float)c[4];
    for (k = 0; k < 10; k++)
        f->landmarks[k] = (float)c[5 + k];
}

int @TASK@_decode(const nnbuild_blob blobs[@TASK_UPPER@_NUM_OUTPUTS], void *workspace,
    @TASK@_face *faces, int max_faces)
{
    double *cand = (double *)workspace;
    int32_t *order = (int32_t *)(cand + (size_t)CAND_DOUBLES * @TASK_UPPER@_NUM_ANCHORS);
    int32_t *spare = order + @TASK_UPPER@_NUM_ANCHORS;
    int i, j, n, kept = 0;
    for (i = 0; i < @TASK_UPPER@_NUM_OUTPUTS; i++)
        if (blobs[i].data == NULL || blobs[i].stride < @TASK@_output_stride[i])
            return -1;
    n = collect(blobs, cand);
    sort_by_score(cand, CAND_DOUBLES, 4, order, spare, n);
    /* greedy NMS: a kept face suppresses every later one overlapping it by more than NMS_IOU;
     * suppressed entries are marked -1 in order[] */
    for (i = 0; i < n && kept < max_faces; i++) {
        const double *best;
        if (order[i] < 0)
            continue;
        best = &cand[CAND_DOUBLES * order[i]];
        emit(best, &faces[kept++]);
        for (j = i + 1; j < n; j++)
            if (order[j] >= 0 && overlap(best, &cand[CAND_DOUBLES * order[j]]) > NMS_IOU)
                order[j] = -1;
    }
    return kept;
}

void @TASK@_to_source(@TASK@_face *faces, int count, int src_w, int src_h)
{
    double sx, sy, px, py;
    int i, k;
    source_geometry(src_w, src_h, &sx, &sy, &px, &py);
    for (i = 0; i < count; i++) {
        @TASK@_face *f = &faces[i];
        f->x1 = (float)((f->x1 - px) / sx);
        f->x2 = (float)((f->x2 - px) / sx);
        f->y1 = (float)((f->y1 - py) / sy);
        f->y2 = (float)((f->y2 - py) / sy);
        for (k = 0; k < 5; k++) {
            f->landmarks[2 * k] = (float)((f->landmarks[2 * k] - px) / sx);
            f->landmarks[2 * k + 1] = (float)((f->landmarks[2 * k + 1] - py) / sy);
        }
    }
}
'''
