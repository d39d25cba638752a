def current_agency(request):
    return {"agency": getattr(request, "agency", None)}
