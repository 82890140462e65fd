from django.urls import path

from ide import views

urlpatterns = [
    path("", views.home, name="home"),
]
