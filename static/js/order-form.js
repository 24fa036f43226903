// Order forms: the first-PTU picker lists the PTUs of every open session, one <optgroup> per session; show only
// the chosen session's group (labels are local clock times with the zone, so both 02:xx of the autumn DST day
// appear and the missing spring hour does not).
(function () {
  function sync(session, picker) {
    var label = session.options[session.selectedIndex] ? session.options[session.selectedIndex].text : "";
    var keep = null;
    Array.prototype.forEach.call(picker.querySelectorAll("optgroup"), function (group) {
      var shown = group.label === label;
      group.hidden = !shown;
      group.disabled = !shown;
      if (shown) keep = group;
    });
    var selected = picker.options[picker.selectedIndex];
    if (keep && (!picker.dataset.touched || !selected || selected.parentNode !== keep)) {
      // Keep the same clock time on the new day when it exists (17:00 at first), else the first PTU.
      var wanted = selected && picker.dataset.touched ? selected.text.slice(0, 5) : "17:00";
      var match = Array.prototype.find.call(keep.children, function (o) { return o.text.slice(0, 5) === wanted; });
      (match || keep.children[0]).selected = true;
    }
  }
  document.querySelectorAll("select[data-session-groups]").forEach(function (picker) {
    var session = picker.form && picker.form.querySelector("select[name=session]");
    if (!session) return;
    session.addEventListener("change", function () { sync(session, picker); });
    picker.addEventListener("change", function () { picker.dataset.touched = "1"; });
    // A PTU the server chose (answering a request, or the form shown again with an error) is kept.
    if (Array.prototype.some.call(picker.options, function (o) { return o.defaultSelected; })) picker.dataset.touched = "1";
    sync(session, picker);
  });
})();
