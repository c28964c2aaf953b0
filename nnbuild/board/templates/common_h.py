"""Template of the generated C header ``common.h`` (``@KEY@`` placeholders, see render)."""

TEXT = r'''#ifndef NNBUILD_NNIE_BLOB_DEFINED
#define NNBUILD_NNIE_BLOB_DEFINED
/* One NNIE output blob as HI_MPI_SVP_NNIE_Forward leaves it: int32 values with 12 fractional
 * bits (divide by 4096), each row of `width` values padded to `stride` bytes. On the board:
 *   blob.data   = (const void *)(HI_UL)astDst[i].u64VirAddr;  (after the cache flush)
 *   blob.stride = astDst[i].u32Stride;                                                       */
typedef struct {
    const void *data;
    uint32_t stride;
} nnbuild_blob;
#endif
'''
