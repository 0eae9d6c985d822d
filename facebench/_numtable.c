/* Fast parser for tables of decimal numbers (prediction files): the first `ncols` fields of every line.
 *
 * It accepts only a strict subset of what numpy.loadtxt accepts (plain decimal numbers separated by spaces,
 * tabs or commas) and reports anything else so that the caller falls back to numpy; on that subset the
 * values are bit-identical to numpy's (correctly rounded: Clinger's exact fast path, else Python's own
 * correctly rounded string_to_double).
 *
 * parse_rows(data, out, ncols) -> (status, rows)
 *   data  bytes-like, lines separated by '\n' ('\r' not expected: the caller normalises line ends)
 *   out   writable C-contiguous float64 buffer of n_rows * ncols items
 *   status 0: every line parsed, exactly n_rows lines (rows == n_rows)
 *          1: structure differs from an n_rows x >=ncols table (a line with fewer fields, a blank line,
 *             more or fewer lines) at 0-based line `rows`
 *          2: a field outside the strict grammar on 0-based line `rows`
 *   The caller treats any nonzero status by asking numpy, so the two always agree.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static const double POW10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#define IS_SEP(c) ((c) == ' ' || (c) == '\t' || (c) == ',')

/* Parse one field starting at *pos (not a separator, not end of line). 0 ok, 2 outside the grammar. */
static int parse_field(const char **pos, const char *end, double *value, PyThreadState **released) {
    const char *p = *pos;
    const char *start = p;
    int negative = 0;
    if (*p == '+' || *p == '-') {
        negative = (*p == '-');
        p++;
    }
    /* Leading zeros add nothing to the mantissa; more than 19 digits in all take the slow path. */
    uint64_t mantissa = 0;
    int digits = 0, after_point = 0;
    while (p < end && (unsigned)(*p - '0') < 10) {
        mantissa = mantissa * 10 + (uint64_t)(*p - '0');
        digits++;
        p++;
    }
    if (p < end && *p == '.') {
        p++;
        const char *fraction = p;
        while (p < end && (unsigned)(*p - '0') < 10) {
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
            p++;
        }
        after_point = (int)(p - fraction);
        digits += after_point;
    }
    if (digits == 0)
        return 2;
    long exponent = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int exp_negative = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            exp_negative = (*p == '-');
            p++;
        }
        int exp_digits = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (exponent < 100000)
                exponent = exponent * 10 + (*p - '0');
            exp_digits++;
            p++;
        }
        if (exp_digits == 0)
            return 2;
        if (exp_negative)
            exponent = -exponent;
    }
    if (p < end && !IS_SEP(*p) && *p != '\n')
        return 2;
    *pos = p;
    long e10 = exponent - after_point;
    if (digits <= 19 && mantissa <= ((uint64_t)1 << 53) && e10 >= -22 && e10 <= 22) {
        /* Both operands exact, one IEEE operation: correctly rounded. */
        double m = (double)mantissa;
        double v = e10 >= 0 ? m * POW10[e10] : m / POW10[-e10];
        *value = negative ? -v : v;
        return 0;
    }
    char buffer[128];
    size_t length = (size_t)(p - start);
    if (length >= sizeof(buffer))
        return 2;
    memcpy(buffer, start, length);
    buffer[length] = '\0';
    /* Python's dtoa keeps a shared allocator that the GIL guards: hold it for this (rare) call. */
    PyEval_RestoreThread(*released);
    char *stop = NULL;
    double v = PyOS_string_to_double(buffer, &stop, NULL);
    int failed = (v == -1.0 && PyErr_Occurred()) || stop != buffer + length;
    PyErr_Clear();
    *released = PyEval_SaveThread();
    if (failed)
        return 2;
    *value = v;
    return 0;
}

static PyObject *parse_rows(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    Py_ssize_t ncols;
    if (!PyArg_ParseTuple(args, "y*w*n", &data, &out, &ncols))
        return NULL;
    if (ncols <= 0 || out.len % (Py_ssize_t)(ncols * sizeof(double)) != 0 || !PyBuffer_IsContiguous(&out, 'C')) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "out must be a contiguous float64 buffer of n_rows * ncols items");
        return NULL;
    }
    const Py_ssize_t n_rows = out.len / (Py_ssize_t)(ncols * sizeof(double));
    double *target = (double *)out.buf;
    const char *p = (const char *)data.buf;
    const char *end = p + data.len;
    Py_ssize_t row = 0;
    int status = 0;

    PyThreadState *released = PyEval_SaveThread();
    while (status == 0 && p < end) {
        if (row >= n_rows) {
            status = 1;
            break;
        }
        double *cells = target + row * ncols;
        Py_ssize_t field = 0;
        while (p < end && *p != '\n') {
            while (p < end && IS_SEP(*p))
                p++;
            if (p >= end || *p == '\n')
                break;
            if (field < ncols) {
                status = parse_field(&p, end, &cells[field], &released);
                if (status)
                    break;
            } else {
                /* Fields beyond ncols are not converted (numpy's usecols): only checked for odd bytes,
                   since numpy's tokenizer treats other whitespace differently. */
                while (p < end && !IS_SEP(*p) && *p != '\n') {
                    unsigned char c = (unsigned char)*p;
                    if (c < 0x21 || c > 0x7e) {
                        status = 2;
                        break;
                    }
                    p++;
                }
                if (status)
                    break;
            }
            field++;
        }
        if (status)
            break;
        if (field < ncols) {
            status = 1;
            break;
        }
        row++;
        if (p < end)
            p++; /* the '\n' */
    }
    if (status == 0 && row != n_rows)
        status = 1;
    PyEval_RestoreThread(released);

    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return Py_BuildValue("in", status, row);
}

static PyMethodDef methods[] = {
    {"parse_rows", parse_rows, METH_VARARGS,
     "parse_rows(data, out, ncols) -> (status, rows): first ncols numbers of every line into out."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_numtable", "Fast strict parser for number tables.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__numtable(void) { return PyModule_Create(&module); }
