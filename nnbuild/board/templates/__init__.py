"""The C templates, one module each (so a template change is a code change in stage keys:
nnbuild.build.fingerprint follows imports, not data files). Keys are the template names."""

from nnbuild.board.templates import (common_h, embedding_c, embedding_h, face_nms_c, geometry_c,
                                     retinaface_c, retinaface_h, scrfd_c, scrfd_h, sort_c,
                                     ssd_c, ssd_h, ultraface_c, ultraface_h)

TEMPLATES = {
    "common.h.in": common_h.TEXT,
    "embedding.c.in": embedding_c.TEXT,
    "embedding.h.in": embedding_h.TEXT,
    "face_nms.c.in": face_nms_c.TEXT,
    "geometry.c.in": geometry_c.TEXT,
    "retinaface.c.in": retinaface_c.TEXT,
    "retinaface.h.in": retinaface_h.TEXT,
    "scrfd.c.in": scrfd_c.TEXT,
    "scrfd.h.in": scrfd_h.TEXT,
    "sort.c.in": sort_c.TEXT,
    "ssd.c.in": ssd_c.TEXT,
    "ssd.h.in": ssd_h.TEXT,
    "ultraface.c.in": ultraface_c.TEXT,
    "ultraface.h.in": ultraface_h.TEXT,
}
