// uPlot, exposed as window.uPlot for the ops page's plain script.
import uPlot from "uplot";
window.uPlot = uPlot;
