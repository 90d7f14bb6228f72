from __future__ import annotations

import importlib.metadata
import logging
import sys
from textwrap import dedent

import pytest
from distributions import Site

import castgate
from castgate.plugins import PluginError, PluginInfo, PluginStatus, load_plugins, survey_plugins

VENDOR = """
    import castgate
    from starlette.responses import Response

    class {cls}(castgate.Vendor):
        name = {name!r}
        actions = frozenset({{"publish"}})

        async def parse(self, request, route):
            return castgate.Event(vendor=self.name, action="publish")

        def render(self, decision, event):
            return Response()

        def render_malformed(self, error, route):
            return Response(status_code=400)
"""

REGISTERS_VENDOR = """
    @castgate.hookimpl
    def castgate_register_vendors():
        return [{cls}()]
"""

REGISTERS_FUNCTION = """
    import castgate

    @castgate.hookimpl
    def castgate_register_functions():
        return [castgate.PolicyFunction({name!r}, ("string",), "string", str.upper)]
"""


def vendor_plugin(name: str, cls: str = "Camera") -> str:
    return dedent(VENDOR.format(cls=cls, name=name) + REGISTERS_VENDOR.format(cls=cls))


def function_plugin(name: str) -> str:
    return dedent(REGISTERS_FUNCTION.format(name=name))


def install_one(site: Site, distribution: str, source: str, *, entry_point: str = "") -> str:
    """Install ``source`` as the only module of ``distribution``; return its entry-point name."""
    name = entry_point or distribution.replace("-", "_")
    site.install(distribution, entry_points={name: f"mod_{name}"}, modules={f"mod_{name}": source})
    return name


def plugin(infos: tuple[PluginInfo, ...], name: str) -> PluginInfo:
    return next(info for info in infos if info.name == name)


def test_the_built_in_vendor_loads_as_an_entry_point_of_the_castgate_distribution() -> None:
    registry = load_plugins()
    builtin = plugin(registry.plugins, "nginx_rtmp")
    assert builtin.status is PluginStatus.LOADED
    assert (builtin.distribution, builtin.version) == (
        "castgate",
        importlib.metadata.version("castgate"),
    )
    assert builtin.value == "castgate_nginx_rtmp"


def test_a_third_party_plugin_contributes_its_vendor_and_function(site: Site) -> None:
    site.install(
        "acme-castgate",
        version="2.3",
        entry_points={"acme": "acme_vendor", "acme_functions": "acme_functions"},
        modules={
            "acme_vendor": vendor_plugin("acme"),
            "acme_functions": function_plugin("acme.up"),
        },
    )
    registry = load_plugins()
    assert registry.vendors["acme"].name == "acme"
    assert registry.functions["acme.up"].impl("x") == "X"
    info = plugin(registry.plugins, "acme")
    assert (info.distribution, info.version, info.status) == (
        "acme-castgate",
        "2.3",
        PluginStatus.LOADED,
    )
    assert [vendor.name for vendor in info.vendors] == ["acme"]
    assert registry.provider_of("acme") == info
    assert [function.name for function in plugin(registry.plugins, "acme_functions").functions] == [
        "acme.up"
    ]


def test_built_in_plugins_come_first_then_third_party_by_name(site: Site) -> None:
    install_one(site, "zeta", vendor_plugin("zeta"))
    install_one(site, "alpha", vendor_plugin("alpha"))
    names = [info.name for info in load_plugins().plugins]
    assert names.index("nginx_rtmp") < names.index("alpha") < names.index("zeta")


def test_a_disabled_plugin_is_listed_as_blocked_and_never_imported(site: Site) -> None:
    install_one(site, "acme", "raise RuntimeError('imported although disabled')")
    registry = load_plugins(disabled={"acme"})
    assert plugin(registry.plugins, "acme").status is PluginStatus.BLOCKED
    assert "mod_acme" not in sys.modules
    assert "acme" not in registry.vendors


def test_disabling_a_plugin_that_is_not_installed_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="castgate.plugins"):
        load_plugins(disabled={"no_such_plugin"})
    assert "no installed plugin is named no_such_plugin" in caplog.text


@pytest.mark.parametrize(
    ("source", "error"),
    [
        pytest.param(
            "import castgate_no_such_module",
            "cannot import 'mod_acme': ModuleNotFoundError: "
            "No module named 'castgate_no_such_module'",
            id="import-error",
        ),
        pytest.param(
            """
            import castgate

            @castgate.hookimpl
            def castgate_register_vendors():
                raise RuntimeError("no licence file")
            """,
            "castgate_register_vendors raised RuntimeError: no licence file",
            id="hook-raises",
        ),
        pytest.param(
            """
            import castgate

            @castgate.hookimpl
            def castgate_register_functions():
                return castgate.PolicyFunction("acme.f", (), "string", str)
            """,
            "castgate_register_functions must return a list, got PolicyFunction",
            id="not-a-list",
        ),
        pytest.param(
            """
            import castgate

            @castgate.hookimpl
            def castgate_register_vendors():
                return ["acme"]
            """,
            "castgate_register_vendors returned 'acme', which is not a castgate.Vendor",
            id="not-a-vendor",
        ),
        pytest.param(
            vendor_plugin("acme", cls="Nameless").replace("name = 'acme'", ""),
            "vendor class Nameless has no name; set the class attribute name = '...'",
            id="vendor-without-name",
        ),
        pytest.param(
            vendor_plugin("Acme Cam", cls="AcmeCam"),
            "vendor name 'Acme Cam' (AcmeCam) must be one lowercase word",
            id="vendor-name-not-a-word",
        ),
        pytest.param(
            vendor_plugin("acme").replace('actions = frozenset({"publish"})', ""),
            "vendor 'acme' must declare actions, a non-empty frozenset of names",
            id="vendor-without-actions",
        ),
        pytest.param(
            """
            import castgate

            @castgate.hookimpl
            def castgate_register_functions():
                return [castgate.PolicyFunction("acme country", ("ip",), "string", str)]
            """,
            "policy function name 'acme country' must be dotted identifiers",
            id="function-name-with-space",
        ),
        pytest.param(
            """
            import castgate

            @castgate.hookimpl
            def castgate_register_vendor():
                return []
            """,
            "unknown hook 'castgate_register_vendor'; did you mean 'castgate_register_vendors'?",
            id="misspelled-hook",
        ),
        pytest.param(
            """
            import castgate

            @castgate.hookimpl
            def castgate_observe_decision(evnt, decision):
                pass
            """,
            "Argument(s) {'evnt'} are declared in the hookimpl but can not be found",
            id="hook-argument-misspelled",
        ),
        pytest.param(
            """
            def castgate_register_functions():
                return []
            """,
            "'castgate_register_functions' looks like a hook but is not marked with "
            "@castgate.hookimpl",
            id="hook-without-marker",
        ),
    ],
)
def test_a_broken_plugin_is_reported_with_its_name_distribution_and_reason(
    site: Site, source: str, error: str
) -> None:
    install_one(site, "acme", dedent(source))

    registry = survey_plugins()
    info = plugin(registry.plugins, "acme")
    assert info.status is PluginStatus.BROKEN
    assert error in info.error
    assert registry.broken == (info,)
    with pytest.raises(PluginError) as raised:
        load_plugins()
    assert f"plugin 'acme' (acme 1.0): {info.error}" in str(raised.value)


def test_a_broken_plugin_contributes_nothing_not_even_its_valid_hooks(site: Site) -> None:
    source = function_plugin("acme.up") + dedent(
        """
        @castgate.hookimpl
        def castgate_observe_decision(event, decision):
            raise AssertionError("a broken plugin's hook was called")

        @castgate.hookimpl
        def castgate_register_vendors():
            raise RuntimeError("broken")
        """
    )
    install_one(site, "acme", source)
    registry = survey_plugins()
    assert plugin(registry.plugins, "acme").status is PluginStatus.BROKEN
    assert "acme.up" not in registry.functions
    assert registry.hook.castgate_observe_decision.get_hookimpls() == []


def test_a_duplicate_vendor_name_breaks_the_later_plugin_and_names_the_first(site: Site) -> None:
    install_one(site, "acme-one", vendor_plugin("acme"))
    install_one(site, "acme-two", vendor_plugin("acme"))
    registry = survey_plugins()
    assert plugin(registry.plugins, "acme_one").status is PluginStatus.LOADED
    second = plugin(registry.plugins, "acme_two")
    assert second.status is PluginStatus.BROKEN
    assert second.error == "vendor 'acme' is already registered by plugin 'acme_one' (acme-one 1.0)"
    assert registry.provider_of("acme").name == "acme_one"


def test_a_plugin_claiming_a_built_in_vendor_is_the_one_reported(site: Site) -> None:
    install_one(site, "aaa-first-by-name", vendor_plugin("nginx_rtmp"))
    registry = survey_plugins()
    assert plugin(registry.plugins, "aaa_first_by_name").error == (
        f"vendor 'nginx_rtmp' is already registered by plugin 'nginx_rtmp' "
        f"(castgate {importlib.metadata.version('castgate')})"
    )
    assert registry.provider_of("nginx_rtmp").distribution == "castgate"


def test_a_duplicate_function_name_breaks_the_later_plugin(site: Site) -> None:
    install_one(site, "acme-one", function_plugin("acme.up"))
    install_one(site, "acme-two", function_plugin("acme.up"))
    second = plugin(survey_plugins().plugins, "acme_two")
    assert second.error == (
        "policy function 'acme.up' is already registered by plugin 'acme_one' (acme-one 1.0)"
    )


def test_one_plugin_registering_a_vendor_twice_is_broken(site: Site) -> None:
    source = vendor_plugin("acme").replace("return [Camera()]", "return [Camera(), Camera()]")
    install_one(site, "acme", source)
    assert plugin(survey_plugins().plugins, "acme").error == (
        "vendor 'acme' is registered twice by this plugin"
    )


def test_two_distributions_claiming_one_entry_point_name_break_the_second(site: Site) -> None:
    site.install("acme-one", entry_points={"acme": "acme_one"}, modules={"acme_one": ""})
    install_one(site, "acme-two", vendor_plugin("acme"), entry_point="acme")
    registry = survey_plugins()
    first, second = [info for info in registry.plugins if info.name == "acme"]
    assert (first.distribution, first.status) == ("acme-one", PluginStatus.LOADED)
    assert (second.distribution, second.status) == ("acme-two", PluginStatus.BROKEN)
    assert second.error == (
        "its entry-point name is already taken by plugin 'acme' (acme-one 1.0); rename one"
    )
    assert "acme" not in registry.vendors


def test_one_module_behind_two_entry_points_is_loaded_once(site: Site) -> None:
    source = vendor_plugin("acme")
    site.install(
        "acme", entry_points={"a1": "acme_mod", "a2": "acme_mod"}, modules={"acme_mod": source}
    )
    registry = survey_plugins()
    assert plugin(registry.plugins, "a1").status is PluginStatus.LOADED
    assert plugin(registry.plugins, "a2").error == "'acme_mod' is already loaded as plugin 'a1'"
    assert registry.provider_of("acme").name == "a1"


def test_a_half_registered_plugin_leaves_no_hooks_behind(site: Site) -> None:
    # pluggy validates hooks one by one: the valid one is registered before the invalid one fails.
    source = """
        import castgate

        @castgate.hookimpl
        def castgate_observe_decision(event, decision):
            pass

        @castgate.hookimpl
        def castgate_register_vendors(extra):
            return []
    """
    install_one(site, "acme", dedent(source))
    registry = survey_plugins()
    assert plugin(registry.plugins, "acme").status is PluginStatus.BROKEN
    assert registry.hook.castgate_observe_decision.get_hookimpls() == []


def test_a_failing_observer_is_logged_with_its_plugin_and_the_others_still_run(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    observer = """
        import castgate

        seen = []

        @castgate.hookimpl
        def castgate_observe_decision(event, decision):
            {body}
    """
    install_one(site, "a_failing", dedent(observer.format(body="raise RuntimeError('sink down')")))
    install_one(site, "b_working", dedent(observer.format(body="seen.append(decision)")))
    registry = load_plugins()
    decision = castgate.Decision(castgate.Effect.ALLOW, "ok")

    with caplog.at_level(logging.ERROR, logger="castgate.plugins"):
        registry.observe_decision(castgate.Event(vendor="acme", action="publish"), decision)

    assert sys.modules["mod_b_working"].seen == [decision]
    assert "plugin 'a_failing' failed in castgate_observe_decision" in caplog.text
    assert "sink down" in caplog.text


def test_an_observer_may_take_fewer_arguments_than_the_hook_offers(site: Site) -> None:
    source = """
        import castgate

        seen = []

        @castgate.hookimpl
        def castgate_observe_decision(decision):
            seen.append(decision)
    """
    install_one(site, "acme", dedent(source))
    decision = castgate.Decision(castgate.Effect.DENY, "no")
    load_plugins().observe_decision(castgate.Event(vendor="acme", action="play"), decision)
    assert sys.modules["mod_acme"].seen == [decision]
