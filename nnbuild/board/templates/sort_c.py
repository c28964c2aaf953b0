"""Template of the generated C source ``sort.c`` (``@KEY@`` placeholders, see render)."""

TEXT = r'''/* Indices 0..n-1 of the candidate rows (`width` doubles each, the score at column `col`)
 * sorted by descending score; equal scores keep their collection order, as numpy's
 * argsort(-scores, kind="stable") does. Bottom-up merge sort, `spare` holds n indices. */
static void sort_by_score(const double *rows, int width, int col, int32_t *order,
                          int32_t *spare, int n)
{
    int32_t *src = order, *dst = spare, *tmp;
    int run, i;
    for (i = 0; i < n; i++)
        order[i] = i;
    for (run = 1; run < n; run *= 2) {
        for (i = 0; i < n; i += 2 * run) {
            int mid = i + run < n ? i + run : n, end = i + 2 * run < n ? i + 2 * run : n;
            int a = i, b = mid, k = i;
            while (a < mid && b < end)
                dst[k++] = rows[(size_t)width * src[b] + col] > rows[(size_t)width * src[a] + col]
                               ? src[b++] : src[a++];
            while (a < mid)
                dst[k++] = src[a++];
            while (b < end)
                dst[k++] = src[b++];
        }
        tmp = src, src = dst, dst = tmp;
    }
    if (src != order)
        memcpy(order, src, (size_t)n * sizeof *order);
}
'''
