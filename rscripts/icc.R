# Intraclass correlation coefficients (ICC) for the reproducibility of radiomics features
# between two (or more) segmentations of the same patients.
#
# Methods: Shrout PE, Fleiss JL (1979). Intraclass correlations: uses in assessing rater
#          reliability. Psychol Bull 86:420-428.
#          McGraw KO, Wong SP (1996). Forming inferences about some intraclass correlation
#          coefficients. Psychol Methods 1:30-46 (confidence intervals, Table 7).
#          Koo TK, Li MY (2016). A guideline of selecting and reporting intraclass
#          correlation coefficients for reliability research. J Chiropr Med 15:155-163
#          (the model / type / unit naming used here).
# Reference implementation: psych::ICC (Revelle W, psych package), whose six rows are
# reproduced here with the ANOVA mean squares computed for all features at once (one
# psych::ICC call per feature takes ~7 ms, ~10 s for 1,300 features, and the study reruns
# the filter inside every cross-validation fold). tests/test_icc.py checks the equality.
#
# Form -> psych::ICC row (Shrout & Fleiss name; McGraw & Wong name):
#   model = "oneway",  unit = "single"            -> ICC1  (ICC(1,1); ICC(1))
#   model = "oneway",  unit = "average"           -> ICC1k (ICC(1,k); ICC(k))
#   model = "twoway",  type = "agreement", single  -> ICC2  (ICC(2,1); ICC(A,1))  [default]
#   model = "twoway",  type = "agreement", average -> ICC2k (ICC(2,k); ICC(A,k))
#   model = "twoway",  type = "consistency", single  -> ICC3  (ICC(3,1); ICC(C,1))
#   model = "twoway",  type = "consistency", average -> ICC3k (ICC(3,k); ICC(C,k))
# (two-way random and two-way mixed effects give the same point estimate for a given type;
# Koo & Li 2016, Table 3. The one-way model has absolute agreement only.)


#' The psych::ICC row name for a model / type / unit form (see the table above).
icc_form_name <- function(model = "twoway", type = "agreement", unit = "single") {
  model <- match.arg(model, c("twoway", "oneway"))
  type <- match.arg(type, c("agreement", "consistency"))
  unit <- match.arg(unit, c("single", "average"))
  if (model == "oneway" && type == "consistency") {
    stop("the one-way ICC model measures absolute agreement only (type = 'agreement')")
  }
  base <- if (model == "oneway") "ICC1" else if (type == "agreement") "ICC2" else "ICC3"
  if (unit == "average") paste0(base, "k") else base
}


#' Two-way ANOVA mean squares of n targets x k raters, for many variables at once.
#'
#' @param ratings list of k numeric matrices or data.frames (n targets x p variables), one
#'   per rater, complete (no NA).
#' @return list(n, k, msb (between targets), msw (within targets), msj (between raters),
#'   mse (residual)); each mean square a numeric vector of length p.
icc_mean_squares <- function(ratings) {
  ratings <- lapply(ratings, as.matrix)
  k <- length(ratings)
  n <- nrow(ratings[[1]])
  row_means <- Reduce(`+`, ratings) / k                   # n x p
  grand <- colMeans(row_means)                            # p
  rater_means <- sapply(ratings, colMeans)                # p x k (vector if p == 1)
  rater_means <- matrix(rater_means, ncol = k)
  ss_total <- Reduce(`+`, lapply(ratings, function(m) colSums(sweep(m, 2, grand)^2)))
  ss_targets <- k * colSums(sweep(row_means, 2, grand)^2)
  ss_raters <- n * rowSums((rater_means - grand)^2)
  ss_error <- ss_total - ss_targets - ss_raters
  list(n = n, k = k,
       msb = ss_targets / (n - 1),
       msw = (ss_total - ss_targets) / (n * (k - 1)),
       msj = ss_raters / (k - 1),
       mse = ss_error / ((n - 1) * (k - 1)))
}


#' The six ICCs of Shrout & Fleiss with McGraw & Wong confidence intervals.
#'
#' @param ratings list of k complete numeric matrices (n targets x p variables).
#' @param alpha 1 - confidence level of the intervals.
#' @return data.frame with one row per variable and columns ICC1, ICC2, ICC3, ICC1k, ICC2k,
#'   ICC3k and, for each, `<name>_lower` and `<name>_upper` (same values as psych::ICC).
icc_all_forms <- function(ratings, alpha = 0.05) {
  ms <- icc_mean_squares(ratings)
  n <- ms$n; k <- ms$k; msb <- ms$msb; msw <- ms$msw; msj <- ms$msj; mse <- ms$mse
  q <- 1 - alpha / 2
  icc1 <- (msb - msw) / (msb + (k - 1) * msw)
  icc2 <- (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
  icc3 <- (msb - mse) / (msb + (k - 1) * mse)
  # One-way and consistency intervals: F-based (McGraw & Wong 1996, Table 7, cases 1 and 3).
  f1 <- msb / msw
  f1_low <- f1 / stats::qf(q, n - 1, n * (k - 1))
  f1_up <- f1 * stats::qf(q, n * (k - 1), n - 1)
  f3 <- msb / mse
  f3_low <- f3 / stats::qf(q, n - 1, (n - 1) * (k - 1))
  f3_up <- f3 * stats::qf(q, (n - 1) * (k - 1), n - 1)
  # Absolute agreement, two-way: Satterthwaite degrees of freedom (McGraw & Wong case 2A).
  fj <- msj / mse
  v_num <- (k - 1) * (n - 1) * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2)^2
  v_den <- (n - 1) * k^2 * icc2^2 * fj^2 + (n * (1 + (k - 1) * icc2) - k * icc2)^2
  v <- v_num / v_den
  f_up <- suppressWarnings(stats::qf(q, n - 1, v))
  f_low <- suppressWarnings(stats::qf(q, v, n - 1))
  denominator <- k * msj + (k * n - k - n) * mse
  icc2_lower <- n * (msb - f_up * mse) / (f_up * denominator + n * msb)
  icc2_upper <- n * (f_low * msb - mse) / (denominator + n * f_low * msb)
  data.frame(
    ICC1 = icc1, ICC2 = icc2, ICC3 = icc3,
    ICC1k = (msb - msw) / msb,
    ICC2k = (msb - mse) / (msb + (msj - mse) / n),
    ICC3k = (msb - mse) / msb,
    ICC1_lower = (f1_low - 1) / (f1_low + k - 1), ICC1_upper = (f1_up - 1) / (f1_up + k - 1),
    ICC2_lower = icc2_lower, ICC2_upper = icc2_upper,
    ICC3_lower = (f3_low - 1) / (f3_low + k - 1), ICC3_upper = (f3_up - 1) / (f3_up + k - 1),
    ICC1k_lower = 1 - 1 / f1_low, ICC1k_upper = 1 - 1 / f1_up,
    ICC2k_lower = icc2_lower * k / (1 + icc2_lower * (k - 1)),
    ICC2k_upper = icc2_upper * k / (1 + icc2_upper * (k - 1)),
    ICC3k_lower = 1 - 1 / f3_low, ICC3k_upper = 1 - 1 / f3_up)
}


#' ICC of every feature between two readings (segmentations) of the same patients.
#'
#' Patients are matched by `id` (a column present in both tables) or, when `id` is NULL,
#' by row names; only the patients present in both tables are used. For each feature the
#' patients with a value in both readings are used (`n`). A feature that does not vary
#' across patients in either reading, or has fewer than 2 complete patients, gets icc =
#' NA, kept = FALSE and the reason in `reason`.
#'
#' @param reader1,reader2 data.frames with the feature columns (one row per patient).
#' @param features feature column names (numeric, present in both tables).
#' @param model,type,unit ICC form (header table): default two-way, absolute agreement,
#'   single rater = ICC(2,1) = ICC(A,1).
#' @param threshold features with icc > threshold are kept.
#' @param id optional patient identifier column; NULL to match on row names.
#' @param alpha 1 - confidence level of the interval.
#' @return data.frame(feature, icc, lower, upper, n, kept, reason, form), one row per
#'   feature in the order given.
feature_icc <- function(reader1, reader2, features, model = "twoway", type = "agreement",
                        unit = "single", threshold = 0.8, id = NULL, alpha = 0.05) {
  form <- icc_form_name(model, type, unit)
  features <- as.character(unlist(features))
  for (reading in list(list(reader1, "reader 1"), list(reader2, "reader 2"))) {
    missing <- setdiff(c(id, features), names(reading[[1]]))
    if (length(missing) > 0) {
      stop(sprintf("%s table: column(s) not found: %s", reading[[2]],
                   paste0("'", head(missing, 10), "'", collapse = ", ")))
    }
    not_numeric <- features[!vapply(reading[[1]][features], is.numeric, logical(1))]
    if (length(not_numeric) > 0) {
      stop(sprintf("%s table: feature column(s) must be numeric: %s", reading[[2]],
                   paste0("'", head(not_numeric, 10), "'", collapse = ", ")))
    }
  }
  ids1 <- if (is.null(id)) rownames(reader1) else as.character(reader1[[id]])
  ids2 <- if (is.null(id)) rownames(reader2) else as.character(reader2[[id]])
  for (dup in list(list(ids1, "reader 1"), list(ids2, "reader 2"))) {
    if (anyDuplicated(dup[[1]])) {
      stop(sprintf("%s table: patient identifier(s) repeated: %s", dup[[2]],
                   paste(head(unique(dup[[1]][duplicated(dup[[1]])]), 10), collapse = ", ")))
    }
  }
  common <- intersect(ids1, ids2)
  if (length(common) < 2) {
    stop(sprintf("ICC needs at least 2 patients read twice; %d patient(s) are in both tables",
                 length(common)))
  }
  x1 <- as.matrix(reader1[match(common, ids1), features, drop = FALSE])
  x2 <- as.matrix(reader2[match(common, ids2), features, drop = FALSE])
  out <- data.frame(feature = features, icc = NA_real_, lower = NA_real_, upper = NA_real_,
                    n = colSums(!is.na(x1) & !is.na(x2)), kept = FALSE,
                    reason = NA_character_, form = form, stringsAsFactors = FALSE)
  complete <- is.finite(x1) & is.finite(x2)
  constant <- function(m) apply(m, 2, function(v) {
    v <- v[is.finite(v)]
    length(v) < 2 || max(v) - min(v) <= 1e-12 * max(1, abs(v))
  })
  out$reason[out$n < 2] <- "fewer than 2 patients with a value in both readings"
  flat <- is.na(out$reason) & (constant(ifelse(complete, x1, NA)) |
                                 constant(ifelse(complete, x2, NA)))
  out$reason[flat] <- "feature is constant across patients in a reading"
  todo <- which(is.na(out$reason))
  # Features with the same set of complete patients are computed together.
  patterns <- apply(complete[, todo, drop = FALSE], 2, paste, collapse = "")
  for (pattern in unique(patterns)) {
    columns <- todo[patterns == pattern]
    rows <- complete[, columns[1]]
    forms <- icc_all_forms(list(x1[rows, columns, drop = FALSE],
                                x2[rows, columns, drop = FALSE]), alpha)
    out$icc[columns] <- forms[[form]]
    out$lower[columns] <- forms[[paste0(form, "_lower")]]
    out$upper[columns] <- forms[[paste0(form, "_upper")]]
  }
  undefined <- is.na(out$reason) & !is.finite(out$icc)
  out$reason[undefined] <- "ICC undefined (zero variance in the ANOVA)"
  out$icc[undefined] <- NA_real_
  out$kept <- !is.na(out$icc) & out$icc > threshold
  rownames(out) <- NULL
  out
}
