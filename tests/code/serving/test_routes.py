from serving.routes import UNKNOWN, route_template


def test_routes_keep_their_name_and_anything_else_is_one_label() -> None:
    assert route_template("/classify") == "/classify"
    assert route_template("/static_content/swagger-ui.css") == "/static_content/{file}"
    for made_up in ("/010-1234-5678/x", "/classify/", "/classify/../model", "/" + "a" * 5000, ""):
        assert route_template(made_up) == UNKNOWN
