// On a phone the menu folds behind the burger (Bulma's navbar-burger); a tap opens or closes it.
document.querySelectorAll(".navbar-burger").forEach(function (burger) {
  burger.addEventListener("click", function () {
    var menu = document.getElementById(burger.dataset.target);
    var open = !burger.classList.contains("is-active");
    burger.classList.toggle("is-active", open);
    if (menu) menu.classList.toggle("is-active", open);
    burger.setAttribute("aria-expanded", open ? "true" : "false");
  });
});
