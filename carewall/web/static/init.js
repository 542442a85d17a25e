// GOV.UK Frontend's components enhance themselves when script runs; every page works without it.
import { initAll } from "/frontend/govuk-frontend.min.js";
initAll();
