# Argument checks shared by the verbs; errors name the argument and say how to fix it.

.check_assay <- function(x, assay.type) {
    if (is.numeric(assay.type)) {
        if (assay.type < 1 || assay.type > length(assayNames(x))) {
            stop(sprintf("`assay.type` = %s is out of range; the object has %d assays.", assay.type,
                length(assayNames(x))), call. = FALSE)
        }
        return(assay.type)
    }
    if (!is.character(assay.type) || length(assay.type) != 1L || !assay.type %in% assayNames(x)) {
        stop(sprintf("`assay.type` = '%s' is not an assay of this object (available: %s).",
            paste(assay.type, collapse = ","), paste(assayNames(x), collapse = ", ")), call. = FALSE)
    }
    assay.type
}

# NULL seed -> draw from R's RNG so set.seed() controls the Python side too.
.resolve_seed <- function(seed) {
    if (is.null(seed)) return(sample.int(.Machine$integer.max, 1L))
    if (!is.numeric(seed) || length(seed) != 1L || is.na(seed) || seed < 0 || seed != round(seed)) {
        stop("`seed` must be NULL or a single non-negative whole number.", call. = FALSE)
    }
    as.integer(seed)
}

# R-side progress messages (silenced by verbose = FALSE or suppressMessages()).
.progress <- function(verbose, fmt, ...) {
    if (isTRUE(verbose)) message(sprintf(fmt, ...))
}

# R numbers are doubles; a whole one crosses as an integer, anything else as it is, for Python to accept or refuse.
.whole <- function(x) {
    if (is.numeric(x) && length(x) == 1L && is.finite(x) && x == round(x) && abs(x) <= .Machine$integer.max) {
        as.integer(x)
    } else {
        x
    }
}

.check_count <- function(value, name, minimum = 1L) {
    if (!is.numeric(value) || length(value) != 1L || is.na(value) || value != round(value) || value < minimum) {
        stop(sprintf("`%s` must be a single whole number >= %d, got %s.", name, minimum,
            paste(format(value), collapse = ",")), call. = FALSE)
    }
    as.integer(value)
}
