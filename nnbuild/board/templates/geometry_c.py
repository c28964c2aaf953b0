"""Template of the generated C source ``geometry.c`` (``@KEY@`` placeholders, see render)."""

TEXT = r'''/* Where the camera picture sits in the network input: x_net = x_src * sx + px (the package's
 * input.resize, nnbuild.preprocess: "@RESIZE@"). Letterbox: scale kept, picture centred, odd
 * leftover pixels right/bottom, sizes rounded half to even (as Python's round). */
static void source_geometry(int src_w, int src_h, double *sx, double *sy, double *px, double *py)
{
    const double net_w = @IN_W@.0, net_h = @IN_H@.0;
    if (@LETTERBOX@) {
        double scale = fmin(net_w / src_w, net_h / src_h);
        double new_w = fmax(1.0, fmin(net_w, nearbyint(src_w * scale)));
        double new_h = fmax(1.0, fmin(net_h, nearbyint(src_h * scale)));
        *sx = *sy = scale;
        *px = floor((net_w - new_w) / 2.0);
        *py = floor((net_h - new_h) / 2.0);
    } else {
        *sx = net_w / src_w;
        *sy = net_h / src_h;
        *px = *py = 0.0;
    }
}
'''
